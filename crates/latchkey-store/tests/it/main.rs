//! Store integration tests: one story, written against `dyn Store`, run on each backend.

mod story;

use latchkey_store::SqliteStore;

#[tokio::test]
async fn sqlite_passes_the_story() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("story.db").display());
    let store = SqliteStore::open(&url).await.unwrap();
    story::run(&store).await;
}

#[tokio::test]
async fn sqlite_reopens_with_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("reopen.db").display());
    let admin = story::admin();
    {
        let store = SqliteStore::open(&url).await.unwrap();
        latchkey_store::Store::create_admin(&store, &admin)
            .await
            .unwrap();
    }
    let store = SqliteStore::open(&url).await.unwrap();
    let found = latchkey_store::Store::token_by_hash(&store, &admin.hash)
        .await
        .unwrap();
    assert_eq!(found, Some(admin.token));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_inserts_are_group_committed_within_the_quota_and_durable() {
    use latchkey_core::{Id, Owner, Secret, SecretKind, Token};
    use latchkey_store::{Store, StoreError};
    use std::sync::Arc;

    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("group.db").display());
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&url).await.unwrap());
    let owner = Owner::Account(Id::random());
    let now = time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..60 {
        let store = Arc::clone(&store);
        tasks.spawn(async move {
            let token = Token::new(owner, format!("t{i}"), now);
            let hash = Secret::generate(SecretKind::Account).hash();
            (store.insert_token(&token, &hash, 25).await, hash)
        });
    }
    let results = tasks.join_all().await;
    let accepted: Vec<_> = results
        .iter()
        .filter(|(r, _)| r.is_ok())
        .map(|(_, h)| *h)
        .collect();
    let refused = results
        .iter()
        .filter(|(r, _)| matches!(r, Err(StoreError::QuotaExceeded(25))))
        .count();
    assert_eq!((accepted.len(), refused), (25, 35));
    drop(store);
    let reopened = SqliteStore::open(&url).await.unwrap();
    for hash in &accepted {
        assert!(reopened.token_by_hash(hash).await.unwrap().is_some());
    }
}
