//! Requests that meet a replication as it ends, fails or waits: joined, answered by a run
//! under the same ID or a new job, and a retry's backoff left to a person to cut short.

use std::time::Duration;

use serde_json::json;

use super::support::vault::*;
use super::support::{self, Caller, Server};
use super::with_replica;
use loop_server::db::jobs::{self, Claimant, Claimed};

/// A server whose jobs wait for the test to claim them, with a vault `name` that has a
/// replica: (the server, the vault).
fn replicated_by_hand(name: &str) -> (Server, String) {
    let server = Server::start_with(|c| {
        support::with_spare(c);
        c.jobs.concurrency = 0;
    });
    let admin = server.admin();
    let (_, vault) = customer_with_vault(&admin, name, None);
    with_replica(&admin, &vault);
    drop(admin);
    (server, vault)
}

/// Asks for a replication of `vault`, as a person does: the open job's ID.
fn ask_for(admin: &Caller<'_>, vault: &str) -> String {
    admin
        .post(&format!("/api/v1/vaults/{vault}/replication"), json!({}))
        .expect(202)["id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Claims job `id` as runner A of node A (with whatever else is due).
fn claim(server: &Server, id: &str) -> Claimed {
    let claimant = Claimant {
        runner: "runner-a",
        node: Some("node-a"),
    };
    let now = server.state.now();
    let report = server.block_on(jobs::claim_due(
        &server.state.db.pool,
        claimant,
        now,
        60_000,
        10,
    ));
    report
        .unwrap()
        .claimed
        .into_iter()
        .find(|c| c.job.id == id)
        .expect("the replication")
}

/// A request that joins a replication after its last look at the vault (as its end is being
/// recorded) is not left unanswered: the end is not recorded, and the job is queued again
/// under its ID without counting as an attempt; the run after it ends it. A schedule's run
/// that finds the job open does not send it round again, and neither does a request once a
/// cancel was asked for. After five runs again, the job ends and names the new job that
/// takes the requests.
#[test]
fn a_request_after_a_replications_last_look_queues_it_again_under_its_id() {
    use loop_api::JobState;
    use loop_server::db::jobs::{Answering, Claimed};

    let (server, vault) = replicated_by_hand("Replicated");
    let admin = server.admin();
    let ask = || ask_for(&admin, &vault);
    let id = ask();
    let db = &server.state.db;
    let claim = |id: &str| claim(&server, id);
    let look = || server.block_on(jobs::asked_again(&db.pool, &id)).unwrap();
    let end = |held: &Claimed, seen| {
        let now = server.state.now();
        let summary = json!({ "replicas": [] });
        server
            .block_on(jobs::end_answering(
                db,
                &id,
                held.fence,
                JobState::Succeeded,
                &summary,
                seen,
                now,
            ))
            .unwrap()
    };
    let job = |id: &str| admin.get(&format!("/api/v1/jobs/{id}")).expect(200);

    let first = claim(&id);
    let seen = look();
    assert_eq!(ask(), id, "a request while the job runs joins it");
    assert_eq!(end(&first, seen), Answering::AskedAgain);
    let queued = job(&id);
    assert_eq!(queued["state"], "queued", "{queued:#}");
    assert_eq!(queued["attempts"], 0, "{queued:#}");
    assert_eq!(
        end(&first, seen),
        Answering::Lost,
        "the first run holds it no more"
    );

    // A passing failure puts it back in the queue with its error; the run after it
    // succeeds. Meanwhile the replicas' schedule comes due: it joins without asking again.
    let failed = claim(&id);
    let now = server.state.now();
    let retry = jobs::retry_at(&db.pool, &id, failed.fence, now, "the spare was away");
    assert!(server.block_on(retry).unwrap());
    let second = claim(&id);
    let seen = look();
    server.advance(Duration::from_secs(16 * 60));
    let tick = server.block_on(loop_server::jobs::scheduler::tick(&server.state));
    assert_eq!(
        tick.unwrap().queued,
        [id.as_str()],
        "the schedule joins the job"
    );
    assert_eq!(end(&second, seen), Answering::Ended);
    let ended = job(&id);
    assert_eq!(ended["state"], "succeeded", "{ended:#}");
    assert_eq!(ended["attempts"], 2, "{ended:#}");
    assert_eq!(ended["error"], serde_json::Value::Null, "{ended:#}");

    // With a cancel asked for, a request that joins does not send the job round again.
    let id = ask();
    let held = claim(&id);
    let seen = server.block_on(jobs::asked_again(&db.pool, &id)).unwrap();
    admin
        .post(&format!("/api/v1/jobs/{id}/cancel"), json!({}))
        .expect(200);
    assert_eq!(ask(), id);
    let now = server.state.now();
    let summary = json!({ "replicas": [] });
    let answer = server.block_on(jobs::end_answering(
        db,
        &id,
        held.fence,
        JobState::Succeeded,
        &summary,
        seen,
        now,
    ));
    assert_eq!(answer.unwrap(), Answering::Ended);

    // Asked again as it ends, every time: five runs again, then a new job takes over.
    let id = ask();
    let mut answer = Answering::Lost;
    for _ in 0..=jobs::MAX_RERUNS {
        let held = claim(&id);
        let seen = server.block_on(jobs::asked_again(&db.pool, &id)).unwrap();
        assert_eq!(ask(), id);
        let now = server.state.now();
        answer = server
            .block_on(jobs::end_answering(
                db,
                &id,
                held.fence,
                JobState::Succeeded,
                &summary,
                seen,
                now,
            ))
            .unwrap();
        if answer != Answering::AskedAgain {
            break;
        }
    }
    let Answering::Continued(next) = answer else {
        panic!("{answer:?}");
    };
    let ended = job(&id);
    assert_eq!(ended["state"], "succeeded", "{ended:#}");
    assert_eq!(ended["summary"]["continued_by"], next.as_str(), "{ended:#}");
    assert_eq!(ask(), next, "the new job is the open one");
    let new = job(&next);
    assert_eq!(
        (&new["state"], &new["kind"], &new["target_id"]),
        (&json!("queued"), &json!("replication"), &json!(vault)),
        "{new:#}"
    );

    // A replication that fails for good (a replica the residency no longer admits) ends
    // failed; a request that joined it as it failed gets a job of its own, one that did not
    // join gets none.
    let fail = |held: &Claimed, id: &str, seen| {
        let now = server.state.now();
        let failed = jobs::fail_answering(db, id, held.fence, "refused", seen, now);
        server.block_on(failed).unwrap()
    };
    let held = claim(&next);
    let seen = server.block_on(jobs::asked_again(&db.pool, &next)).unwrap();
    assert_eq!(fail(&held, &next, seen), Answering::Ended);
    assert_eq!(job(&next)["state"], "failed");
    let id = ask();
    let held = claim(&id);
    let seen = server.block_on(jobs::asked_again(&db.pool, &id)).unwrap();
    assert_eq!(ask(), id, "a backup's request joins it");
    let Answering::Continued(after) = fail(&held, &id, seen) else {
        panic!("the request was dropped with the failed job");
    };
    let failed = job(&id);
    assert_eq!(
        (
            &failed["state"],
            &failed["error"],
            &failed["summary"]["continued_by"]
        ),
        (&json!("failed"), &json!("refused"), &json!(after)),
        "{failed:#}"
    );
    assert_eq!(ask(), after, "the new job is the open one");
    assert_eq!(fail(&held, &id, seen), Answering::Lost);
}

/// A replication waiting out its backoff after a passing failure: the requests of a busy
/// vault (a backup's, an event) leave it waiting, so the backoff rides out the outage; a
/// person's request brings it forward.
#[test]
fn only_a_persons_request_cuts_a_replications_backoff_short() {
    use loop_api::JobTrigger;

    let (server, vault) = replicated_by_hand("Backoff");
    let admin = server.admin();
    let ask = || ask_for(&admin, &vault);
    let id = ask();
    let db = &server.state.db;
    let held = claim(&server, &id);
    let later = server.state.now() + 600_000;
    let retry = jobs::retry_at(&db.pool, &id, held.fence, later, "the spare was away");
    assert!(server.block_on(retry).unwrap());
    let scheduled = || {
        let job = server
            .block_on(jobs::job_by_id(&db.pool, &id))
            .unwrap()
            .unwrap();
        job.scheduled_at.timestamp_millis()
    };

    let by_event = server.block_on(async {
        let v = loop_server::db::vaults::vault_by_id(&db.pool, &vault)
            .await
            .unwrap()
            .unwrap();
        let mut tx = db.begin().await.unwrap();
        let queued = loop_server::jobs::replicate::queue_if_replicated(
            &server.state,
            &mut tx,
            &v,
            JobTrigger::Event,
        )
        .await
        .unwrap();
        tx.commit().await.unwrap();
        queued
    });
    assert_eq!(by_event.as_deref(), Some(id.as_str()));
    assert_eq!(scheduled(), later, "an event leaves the backoff as it was");
    assert_eq!(ask(), id);
    assert!(
        scheduled() <= server.state.now(),
        "a person's request runs it now"
    );
}
