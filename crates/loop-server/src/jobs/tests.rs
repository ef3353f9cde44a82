//! The job table's rules against a real database (SQLite, or PostgreSQL when the run asks): one runner per job, fencing of a
//! runner that lost its lease, abandonment, cancel, and the bounded log.

use loop_api::{JobKind, JobProgress, JobQuery, JobState, JobTrigger};

use super::{FIRST_BACKOFF_MS, MAX_BACKOFF_MS, backoff_ms};
use crate::db::jobs::{self, Held, NewJob};
use crate::db::{Db, DbResult};
use crate::domain::TenantScope;

const LEASE: i64 = 60_000;

/// What a test's database needs kept: its directory (SQLite), or its PostgreSQL database
/// when the run asks for one.
type Keep = (tempfile::TempDir, Option<loop_testkit::postgres::Database>);

async fn db() -> (Keep, Db) {
    let dir = tempfile::tempdir().unwrap();
    let postgres = loop_testkit::postgres::for_server();
    let url = match &postgres {
        Some(d) => d.url.clone(),
        None => format!("sqlite://{}", dir.path().join("jobs.db").display()),
    };
    let db = Db::connect(&url).await.unwrap();
    sqlx::query(
        "INSERT INTO tenants (id, parent_id, path, kind, name, status, created_at)
         VALUES ('tn_1', NULL, '/tn_1/', 'provider', 'P', 'active', 1)",
    )
    .execute(&db.pool)
    .await
    .unwrap();
    ((dir, postgres), db)
}

fn runner(id: &str) -> jobs::Claimant<'_> {
    jobs::Claimant {
        runner: id,
        node: Some("test-node"),
    }
}

async fn queue(db: &Db, target: &str, at: i64, max_attempts: u32) -> DbResult<String> {
    queue_of(db, JobKind::StagingSweep, target, at, max_attempts).await
}

async fn queue_of(
    db: &Db,
    kind: JobKind,
    target: &str,
    at: i64,
    max_attempts: u32,
) -> DbResult<String> {
    let mut tx = db.begin().await?;
    let id = jobs::enqueue(
        &mut tx,
        &NewJob {
            runner: jobs::Runner::Server,
            tenant_id: "tn_1",
            kind,
            target_kind: "destination",
            target_id: target,
            scheduled_at: at,
            trigger: JobTrigger::System,
            started_by_id: None,
            max_attempts,
            params: serde_json::json!({}),
            deadline_at: None,
        },
        at,
    )
    .await?;
    tx.commit().await?;
    Ok(id)
}

async fn state_of(db: &Db, id: &str) -> JobState {
    jobs::job_by_id(&db.pool, id).await.unwrap().unwrap().state
}

#[tokio::test]
async fn of_runners_racing_for_a_job_exactly_one_gets_it() {
    let (_dir, db) = db().await;
    let id = queue(&db, "local", 1_000, 3).await.unwrap();
    let runners: Vec<_> = (0..8)
        .map(|n| {
            let pool = db.pool.clone();
            tokio::spawn(async move {
                jobs::claim_due(&pool, runner(&format!("runner-{n}")), 2_000, LEASE, 4)
                    .await
                    .unwrap()
                    .claimed
            })
        })
        .collect();
    let mut claimed = Vec::new();
    for r in runners {
        claimed.extend(r.await.unwrap());
    }
    assert_eq!(claimed.len(), 1, "{claimed:?}");
    assert_eq!(claimed[0].job.id, id);
    assert_eq!(claimed[0].job.state, JobState::Running);
    assert_eq!(claimed[0].job.attempts, 1);
    assert!(!claimed[0].taken_over);
}

#[tokio::test]
async fn a_job_waits_for_its_time() {
    let (_dir, db) = db().await;
    queue(&db, "local", 5_000, 3).await.unwrap();
    let early = jobs::claim_due(&db.pool, runner("a"), 4_999, LEASE, 4)
        .await
        .unwrap();
    assert!(early.claimed.is_empty());
    let due = jobs::claim_due(&db.pool, runner("a"), 5_000, LEASE, 4)
        .await
        .unwrap();
    assert_eq!(due.claimed.len(), 1);
}

#[tokio::test]
async fn a_runner_that_lost_its_lease_has_every_write_refused() {
    let (_dir, db) = db().await;
    let id = queue(&db, "local", 0, 3).await.unwrap();
    let pool = &db.pool;
    let a = jobs::claim_due(pool, runner("a"), 0, LEASE, 1)
        .await
        .unwrap()
        .claimed;
    let a = &a[0];
    assert_eq!(
        jobs::renew(pool, &id, a.fence, LEASE).await.unwrap(),
        Held::Yes {
            cancel_requested: false
        }
    );
    // Runner A pauses past its lease; B takes the job over.
    assert!(
        jobs::claim_due(pool, runner("b"), LEASE - 1, LEASE, 1)
            .await
            .unwrap()
            .claimed
            .is_empty(),
        "not before the lease ends"
    );
    let b = jobs::claim_due(pool, runner("b"), LEASE + 1, LEASE, 1)
        .await
        .unwrap()
        .claimed;
    let b = &b[0];
    assert!(b.taken_over);
    assert_eq!(b.job.attempts, 2);
    assert!(b.fence > a.fence);

    // A resumes: nothing it writes lands.
    let p = JobProgress {
        files_done: 7,
        ..Default::default()
    };
    assert!(!jobs::progress(pool, &id, a.fence, &p).await.unwrap());
    assert!(
        !jobs::log(pool, &id, a.fence, "info", "from a", 1)
            .await
            .unwrap()
    );
    assert_eq!(
        jobs::renew(pool, &id, a.fence, 1).await.unwrap(),
        Held::Lost
    );
    let done = jobs::finish(pool, &id, a.fence, JobState::Failed, None, Some("a"), 1);
    assert!(!done.await.unwrap());
    assert_eq!(state_of(&db, &id).await, JobState::Running);

    // B's writes land, and B ends the job.
    assert!(jobs::progress(pool, &id, b.fence, &p).await.unwrap());
    assert!(
        jobs::log(pool, &id, b.fence, "info", "from b", 2)
            .await
            .unwrap()
    );
    let summary = serde_json::json!({"removed": 1});
    let done = jobs::finish(
        pool,
        &id,
        b.fence,
        JobState::Succeeded,
        Some(&summary),
        None,
        3,
    );
    assert!(done.await.unwrap());
    let job = jobs::job_by_id(pool, &id).await.unwrap().unwrap();
    assert_eq!(job.state, JobState::Succeeded);
    assert_eq!(job.progress.files_done, 7);
    assert_eq!(job.summary, Some(summary));
    let log: Vec<String> = jobs::job_log(pool, &id)
        .await
        .unwrap()
        .into_iter()
        .map(|l| l.message)
        .collect();
    assert_eq!(log, ["from b"]);
    // Ended: B holds nothing any more either.
    assert_eq!(
        jobs::renew(pool, &id, b.fence, 4).await.unwrap(),
        Held::Lost
    );
}

#[tokio::test]
async fn a_job_whose_runner_keeps_disappearing_is_abandoned() {
    let (_dir, db) = db().await;
    let id = queue(&db, "local", 0, 2).await.unwrap();
    let pool = &db.pool;
    let mut now = 0;
    for attempt in 1..=2 {
        let c = jobs::claim_due(pool, runner("r"), now, LEASE, 1)
            .await
            .unwrap();
        assert_eq!(c.claimed[0].job.attempts, attempt);
        now += LEASE + 1;
    }
    let last = jobs::claim_due(pool, runner("r"), now, LEASE, 1)
        .await
        .unwrap();
    assert!(last.claimed.is_empty());
    assert_eq!(last.abandoned, std::slice::from_ref(&id));
    assert_eq!(state_of(&db, &id).await, JobState::Abandoned);
}

/// A job that must finish (an erasure) is taken over however often its runner disappeared.
#[tokio::test]
async fn a_job_that_must_finish_is_taken_over_however_often_its_runner_disappears() {
    let (_dir, db) = db().await;
    let id = queue_of(&db, JobKind::VaultErasure, "vt_1", 0, 2)
        .await
        .unwrap();
    let mut now = 0;
    for attempt in 1..=4 {
        let c = jobs::claim_due(&db.pool, runner("r"), now, LEASE, 1)
            .await
            .unwrap();
        assert!(c.abandoned.is_empty());
        assert_eq!(c.claimed[0].job.attempts, attempt);
        now += LEASE + 1;
    }
    assert_eq!(state_of(&db, &id).await, JobState::Running);
}

#[tokio::test]
async fn a_failed_attempt_goes_back_in_the_queue_for_later() {
    let (_dir, db) = db().await;
    let id = queue(&db, "local", 0, 3).await.unwrap();
    let pool = &db.pool;
    let c = jobs::claim_due(pool, runner("r"), 0, LEASE, 1)
        .await
        .unwrap()
        .claimed;
    assert!(
        jobs::retry_at(pool, &id, c[0].fence, 30_000, "storage down")
            .await
            .unwrap()
    );
    let job = jobs::job_by_id(pool, &id).await.unwrap().unwrap();
    assert_eq!(job.state, JobState::Queued);
    assert_eq!(job.error.as_deref(), Some("storage down"));
    assert!(
        jobs::claim_due(pool, runner("r"), 29_999, LEASE, 1)
            .await
            .unwrap()
            .claimed
            .is_empty()
    );
    let again = jobs::claim_due(pool, runner("r"), 30_000, LEASE, 1)
        .await
        .unwrap()
        .claimed;
    assert_eq!(again[0].job.attempts, 2);
}

#[tokio::test]
async fn cancel_ends_a_queued_job_and_flags_a_running_one() {
    let (_dir, db) = db().await;
    let pool = &db.pool;
    let queued = queue(&db, "one", 10_000, 3).await.unwrap();
    let running = queue(&db, "two", 0, 3).await.unwrap();
    let c = jobs::claim_due(pool, runner("r"), 0, LEASE, 1)
        .await
        .unwrap()
        .claimed;
    let mut tx = db.begin().await.unwrap();
    let q = jobs::request_cancel(&mut tx, &queued, 5).await.unwrap();
    let r = jobs::request_cancel(&mut tx, &running, 5).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(q, Some(JobState::Cancelled));
    assert_eq!(r, Some(JobState::Running));
    assert_eq!(
        jobs::renew(pool, &running, c[0].fence, LEASE)
            .await
            .unwrap(),
        Held::Yes {
            cancel_requested: true
        }
    );
    // A cancelled job is never claimed.
    assert!(
        jobs::claim_due(pool, runner("r"), 20_000, LEASE, 4)
            .await
            .unwrap()
            .claimed
            .is_empty()
    );
}

#[tokio::test]
async fn the_same_work_is_queued_once_while_it_is_open() {
    let (_dir, db) = db().await;
    let first = queue(&db, "local", 0, 3).await.unwrap();
    assert_eq!(queue(&db, "local", 0, 3).await.unwrap(), first);
    let other = queue(&db, "elsewhere", 0, 3).await.unwrap();
    assert_ne!(other, first);
    let c = jobs::claim_due(&db.pool, runner("r"), 0, LEASE, 1)
        .await
        .unwrap()
        .claimed;
    let done = jobs::finish(
        &db.pool,
        &first,
        c[0].fence,
        JobState::Succeeded,
        None,
        None,
        1,
    );
    assert!(done.await.unwrap());
    assert_ne!(
        queue(&db, "local", 2, 3).await.unwrap(),
        first,
        "ended: a new job"
    );
    let listed = jobs::jobs_in(
        &db.pool,
        &TenantScope::One("tn_1".into()),
        &JobQuery {
            state: Some(JobState::Succeeded),
            ..Default::default()
        },
        &crate::db::page::Page::first(10),
    )
    .await
    .unwrap()
    .items;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].id, first);
}

#[tokio::test]
async fn of_requests_racing_to_queue_the_same_work_all_get_one_job() {
    let (_dir, db) = db().await;
    let racers: Vec<_> = (0..8)
        .map(|_| {
            let db = db.clone();
            tokio::spawn(async move { queue(&db, "local", 0, 3).await.unwrap() })
        })
        .collect();
    let mut ids = Vec::new();
    for r in racers {
        ids.push(r.await.unwrap());
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "{ids:?}");
    let open: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM jobs WHERE target_id = 'local' AND state IN ('queued', 'running')",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(open, 1);
    // The database itself refuses a second open job, whatever path writes it.
    let dup = sqlx::query(
        "INSERT INTO jobs (id, tenant_id, kind, target_kind, target_id, state, max_attempts,
            scheduled_at, trigger_kind, created_at)
         VALUES ('jb_dup', 'tn_1', 'staging-sweep', 'destination', 'local', 'queued', 1, 0,
            'system', 0)",
    )
    .execute(&db.pool)
    .await;
    assert!(dup.is_err(), "a second open job was stored");
}

#[tokio::test]
async fn a_job_log_is_bounded() {
    let (_dir, db) = db().await;
    let id = queue(&db, "local", 0, 3).await.unwrap();
    let c = jobs::claim_due(&db.pool, runner("r"), 0, LEASE, 1)
        .await
        .unwrap()
        .claimed;
    for n in 0..jobs::MAX_LOG_LINES + 20 {
        let line = format!("line {n}");
        assert!(
            jobs::log(&db.pool, &id, c[0].fence, "info", &line, n)
                .await
                .unwrap()
        );
    }
    let log = jobs::job_log(&db.pool, &id).await.unwrap();
    assert_eq!(log.len() as i64, jobs::MAX_LOG_LINES);
    assert_eq!(log[0].message, "line 0");
    assert_eq!(log.last().unwrap().message, "further lines were dropped");
}

#[test]
fn retries_wait_longer_each_time_up_to_an_hour() {
    let wait = |n| backoff_ms(FIRST_BACKOFF_MS, MAX_BACKOFF_MS, n);
    let waits: Vec<i64> = (1..=10).map(wait).collect();
    assert_eq!(&waits[..3], &[30_000, 60_000, 120_000]);
    assert!(waits.windows(2).all(|w| w[0] <= w[1]));
    assert_eq!(wait(i64::MAX), 3_600_000);
}
