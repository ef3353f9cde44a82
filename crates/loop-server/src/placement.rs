//! Where a tenant's data lives: each vault's places (its destination, its replicas') with
//! their jurisdictions, judged against the owning tenant's residency (`crate::residency`).

use loop_api::{LocationRole, ResidencyReport, Vault, VaultLocation};

use crate::db::tenants::TenantRow;
use crate::domain::TenantScope;
use crate::error::ApiResult;
use crate::state::AppState;

/// Where `v`'s objects live (its primary, then its replicas), judged against its tenant's
/// residency `chain`.
pub fn locations_of(
    state: &AppState,
    v: &Vault,
    replicas: &[crate::db::replicas::ReplicaRow],
    chain: &[Option<Vec<String>>],
) -> Vec<VaultLocation> {
    let place = |role, destination: &str| {
        let (jurisdiction, backend) = match state.destinations.get(destination) {
            Some(d) => (d.jurisdiction.clone(), d.backend),
            // A destination no longer configured: its label is unknown, so it is not allowed.
            None => (String::new(), loop_api::Backend::Local),
        };
        let allowed = !jurisdiction.is_empty() && state.jurisdictions.admits(chain, &jurisdiction);
        VaultLocation {
            vault_id: v.id.clone(),
            tenant_id: v.tenant_id.clone(),
            role,
            destination: destination.to_string(),
            jurisdiction,
            backend,
            allowed,
        }
    };
    std::iter::once(place(LocationRole::Primary, &v.destination))
        .chain(
            replicas
                .iter()
                .map(|r| place(LocationRole::Replica, &r.destination)),
        )
        .collect()
}

/// Every place the vaults of `t` and of the tenants below it live, each judged against its
/// own tenant's residency.
pub async fn report(state: &AppState, t: &TenantRow) -> ApiResult<ResidencyReport> {
    let scope = TenantScope::Subtrees(vec![t.path.clone()]);
    let vaults = crate::db::vaults::vaults_in(&state.db.pool, &scope, None)
        .await?
        .items;
    let tenants =
        crate::db::tenants::tenants_under(&state.db.pool, std::slice::from_ref(&t.path)).await?;
    let mut chains = std::collections::HashMap::new();
    let mut locations = Vec::new();
    for v in &vaults {
        if !chains.contains_key(&v.tenant_id) {
            let Some(owner) = tenants.iter().find(|o| o.tenant.id == v.tenant_id) else {
                continue;
            };
            let chain = crate::db::residency::chain(&state.db.pool, &owner.path).await?;
            chains.insert(v.tenant_id.clone(), chain);
        }
        let replicas = crate::db::replicas::of_vault(&state.db.pool, &v.id).await?;
        locations.extend(locations_of(state, v, &replicas, &chains[&v.tenant_id]));
    }
    let chain = crate::db::residency::chain(&state.db.pool, &t.path).await?;
    Ok(ResidencyReport {
        tenant_id: t.tenant.id.clone(),
        effective: state.jurisdictions.effective(&chain),
        outside: locations.iter().filter(|l| !l.allowed).count() as u32,
        locations,
    })
}
