//! Group commit for token inserts on SQLite.
//!
//! Every commit with `synchronous=FULL` waits for an fsync, and there is one writer. So that
//! concurrent creates do not queue for one fsync each, a single task takes the first insert
//! waiting, every other insert that arrived meanwhile (up to [`MAX_BATCH`]), runs them in
//! one transaction and commits once. Each caller is answered only after that commit, so an
//! acknowledged create is durable. The audit entries of the inserts that happened are
//! appended, in order, in the same transaction; if that fails, the whole batch fails. Each insert keeps its own quota check, in order, inside
//! the transaction, so quotas hold exactly; a refused insert (quota, conflict) does not
//! affect the others. If the commit itself fails, every insert of the batch gets the error.

use latchkey_core::{AuditEvent, SecretHash, Token};
use sqlx::SqlitePool;
use tokio::sync::{mpsc, oneshot};

use crate::error::StoreError;

/// Most inserts committed together.
pub const MAX_BATCH: usize = 256;

struct Job {
    token: Token,
    hash: SecretHash,
    quota: u64,
    audit: AuditEvent,
    reply: oneshot::Sender<Result<(), StoreError>>,
}

/// The handle to the committing task; dropping every handle ends it.
#[derive(Debug, Clone)]
pub(crate) struct Inserter {
    jobs: mpsc::Sender<Job>,
}

impl Inserter {
    /// Starts the committing task on the current Tokio runtime.
    pub(crate) fn spawn(writer: SqlitePool) -> Self {
        let (jobs, queue) = mpsc::channel(MAX_BATCH * 4);
        tokio::spawn(run(writer, queue));
        Inserter { jobs }
    }

    /// Inserts `token` in the next group commit; returns once it is committed (or refused).
    pub(crate) async fn insert(
        &self,
        token: &Token,
        hash: &SecretHash,
        quota: u64,
        audit: &AuditEvent,
    ) -> Result<(), StoreError> {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            token: token.clone(),
            hash: *hash,
            quota,
            audit: audit.clone(),
            reply,
        };
        let stopped = || StoreError::Aborted("the writer has stopped".into());
        self.jobs.send(job).await.map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

async fn run(writer: SqlitePool, mut queue: mpsc::Receiver<Job>) {
    while let Some(first) = queue.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        commit(&writer, batch).await;
    }
}

async fn commit(writer: &SqlitePool, batch: Vec<Job>) {
    let fail_all = |batch: Vec<Job>, why: String| {
        for job in batch {
            let _ = job.reply.send(Err(StoreError::Aborted(why.clone())));
        }
    };
    let mut tx = match writer.begin().await {
        Ok(tx) => tx,
        Err(e) => return fail_all(batch, e.to_string()),
    };
    let mut outcomes = Vec::with_capacity(batch.len());
    for job in &batch {
        let outcome =
            super::insert_token_within_quota(&mut *tx, &job.token, &job.hash, job.quota).await;
        if let Err(e @ (StoreError::Backend(_) | StoreError::Unavailable(_))) = &outcome {
            // Not a refusal of this insert but a failing database: nothing is committed.
            let why = e.to_string();
            let _ = tx.rollback().await;
            return fail_all(batch, why);
        }
        outcomes.push(outcome);
    }
    // The audit entries of the inserts that happened, in order, in the same transaction.
    let audits: Vec<_> = batch
        .iter()
        .zip(&outcomes)
        .filter(|(_, outcome)| outcome.is_ok())
        .map(|(job, _)| job.audit.clone())
        .collect();
    if let Err(e) = super::append_audits(&mut tx, &audits).await {
        let _ = tx.rollback().await;
        return fail_all(batch, e.to_string());
    }
    if let Err(e) = tx.commit().await {
        return fail_all(batch, e.to_string());
    }
    for (job, outcome) in batch.into_iter().zip(outcomes) {
        let _ = job.reply.send(outcome);
    }
}
