//! An invoice's lines (from the plan and the period's daily usage) and its HTML page.

use crate::notify::email::esc as escape;

use loop_api::{Invoice, InvoiceLine, Plan};

const GIB: u128 = 1 << 30;

/// The lines of the invoice for [start, end): the plan's monthly price, then stored data
/// above the quota in GiB-months (the average of the daily measurements `usage`, as
/// (stored bytes, devices), in hundredths of a GiB rounded up) at `extra_gib_cents`. Days
/// without a measurement count as nothing stored.
pub fn lines(plan: &Plan, usage: &[(u64, u64)], start: i64, end: i64) -> Vec<InvoiceLine> {
    let day = |ms: i64| crate::db::time(ms).format("%Y-%m-%d").to_string();
    let mut out = vec![InvoiceLine {
        description: format!("{} plan, {} to {}", plan.name, day(start), day(end)),
        quantity: "1".into(),
        unit_cents: plan.price_cents,
        amount_cents: plan.price_cents,
    }];
    let (Some(quota), Some(price)) = (plan.quota_bytes, plan.extra_gib_cents) else {
        return out;
    };
    let days = ((end - start) as u128).div_ceil(86_400_000).max(1);
    let above: u128 = usage
        .iter()
        .map(|(stored, _)| u128::from(stored.saturating_sub(quota)))
        .sum();
    // Hundredths of a GiB-month, rounded up: the average above the quota over the days.
    let hundredths = (above * 100).div_ceil(days * GIB);
    if hundredths == 0 {
        return out;
    }
    let amount = (hundredths * u128::from(price)).div_ceil(100);
    out.push(InvoiceLine {
        description: format!(
            "Stored data above the {} included, GiB-months (average of {} daily measurements)",
            crate::notify::email::size(quota),
            usage.len()
        ),
        quantity: format!("{}.{:02}", hundredths / 100, hundredths % 100),
        unit_cents: price,
        amount_cents: u64::try_from(amount).unwrap_or(u64::MAX),
    });
    out
}

/// The invoice as a self-contained HTML page (no scripts, no external resources).
pub fn html(inv: &Invoice, issuer: &str) -> String {
    let money = |c: u64| crate::mail::money(c, &inv.currency);
    let date = |t: &chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%d").to_string();
    let rows: String = inv
        .lines
        .iter()
        .map(|l| {
            format!(
                "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td>\
                 <td class=\"n\">{}</td></tr>\n",
                escape(&l.description),
                escape(&l.quantity),
                money(l.unit_cents),
                money(l.amount_cents)
            )
        })
        .collect();
    let paid = match (&inv.paid_at, &inv.payment_reference) {
        (Some(at), r) => format!(
            "<p class=\"paid\">Paid on {}{}.</p>",
            date(at),
            r.as_deref()
                .map(|r| format!(" (reference {})", escape(r)))
                .unwrap_or_default()
        ),
        (None, _) => format!("<p>Due on {}.</p>", date(&inv.due_at)),
    };
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>Invoice {number} of {issuer}</title>\
         <style>body{{font-family:sans-serif;max-width:48rem;margin:2rem auto;padding:0 1rem;\
         color:#111}}table{{width:100%;border-collapse:collapse}}td,th{{padding:.4rem;\
         border-bottom:1px solid #ccc;text-align:left}}.n{{text-align:right}}\
         .paid{{color:#064}}</style></head>\n<body>\n<h1>Invoice {number}</h1>\n\
         <p>From <strong>{issuer}</strong> to <strong>{bill_to}</strong>.<br>\
         Issued on {issued}; period {start} to {end}.</p>\n\
         <table><thead><tr><th>Description</th><th class=\"n\">Quantity</th>\
         <th class=\"n\">Unit price</th><th class=\"n\">Amount</th></tr></thead>\n<tbody>\n\
         {rows}</tbody><tfoot><tr><th colspan=\"3\">Total</th><th class=\"n\">{total}</th>\
         </tr></tfoot></table>\n{paid}\n<p><small>Invoice ID {id}</small></p>\n</body></html>\n",
        number = inv.number,
        issuer = escape(issuer),
        bill_to = escape(&inv.bill_to),
        issued = date(&inv.issued_at),
        start = date(&inv.period_start),
        end = date(&inv.period_end),
        total = money(inv.total_cents),
        id = escape(&inv.id),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(quota: Option<u64>, extra: Option<u64>) -> Plan {
        Plan {
            id: "pl_1".into(),
            issuer_id: "tn_1".into(),
            name: "Small".into(),
            quota_bytes: quota,
            device_limit: Some(5),
            price_cents: 1_999,
            extra_gib_cents: extra,
            currency: "EUR".into(),
            signup: false,
            created_at: crate::db::time(0),
        }
    }

    const DAY: i64 = 86_400_000;

    #[test]
    fn the_plan_price_and_the_average_above_the_quota_are_billed() {
        let gib = 1u64 << 30;
        // 30 days; 10 days at 15 GiB, 20 at 10 GiB; quota 10 GiB: 50 GiB-days above, an
        // average of 1.666… GiB, billed as 1.67 GiB-months at 0.50 EUR = 0.835 → 0.84 EUR.
        let mut usage = vec![(15 * gib, 2); 10];
        usage.extend(vec![(10 * gib, 2); 20]);
        let l = lines(&plan(Some(10 * gib), Some(50)), &usage, 0, 30 * DAY);
        assert_eq!(l.len(), 2);
        assert_eq!(
            (
                l[0].quantity.as_str(),
                l[0].unit_cents,
                l[0].amount_cents,
                l[0].description.as_str()
            ),
            ("1", 1_999, 1_999, "Small plan, 1970-01-01 to 1970-01-31")
        );
        assert_eq!(
            (l[1].quantity.as_str(), l[1].unit_cents, l[1].amount_cents),
            ("1.67", 50, 84)
        );
        // Below the quota, or no price for it: the plan only.
        assert_eq!(
            lines(&plan(Some(20 * gib), Some(50)), &usage, 0, 30 * DAY).len(),
            1
        );
        assert_eq!(
            lines(&plan(Some(10 * gib), None), &usage, 0, 30 * DAY).len(),
            1
        );
    }

    #[test]
    fn the_page_escapes_what_customers_named() {
        let inv = Invoice {
            id: "in_1".into(),
            issuer_id: "tn_1".into(),
            number: 7,
            tenant_id: "tn_2".into(),
            bill_to: "<script>alert(1)</script> & Co".into(),
            plan_id: "pl_1".into(),
            period_start: crate::db::time(0),
            period_end: crate::db::time(30 * DAY),
            currency: "EUR".into(),
            lines: lines(&plan(None, None), &[], 0, 30 * DAY),
            total_cents: 1_999,
            state: loop_api::InvoiceState::Open,
            issued_at: crate::db::time(30 * DAY),
            due_at: crate::db::time(44 * DAY),
            paid_at: None,
            payment_reference: None,
        };
        let page = html(&inv, "Partner \"B\"");
        assert!(!page.contains("<script>"), "{page}");
        assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; Co"));
        assert!(page.contains("Partner &quot;B&quot;"));
        assert!(page.contains("<th class=\"n\">19.99 EUR</th>"), "{page}");
        assert!(page.contains("Due on 1970-02-14."));
    }
}
