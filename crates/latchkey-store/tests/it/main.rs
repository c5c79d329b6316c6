//! Store integration tests: one story, written against `dyn Store`, run on each backend.

mod story;

use latchkey_store::SqliteStore;
use story::audit;

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
        latchkey_store::Store::create_admin(&store, &admin, &audit())
            .await
            .unwrap();
    }
    let store = SqliteStore::open(&url).await.unwrap();
    let found = latchkey_store::Store::token_by_hash(&store, &admin.hash)
        .await
        .unwrap();
    assert_eq!(found.map(|t| t.token), Some(admin.token));
}

#[tokio::test]
async fn sqlite_refuses_a_write_it_cannot_audit() {
    use sqlx::Connection;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("unaudited.db").display());
    let store = SqliteStore::open(&url).await.unwrap();
    let admin = story::admin();
    latchkey_store::Store::create_admin(&store, &admin, &audit())
        .await
        .unwrap();
    let mut other = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::query(
        "CREATE TRIGGER no_audit BEFORE INSERT ON audit_log \
         BEGIN SELECT RAISE(ABORT, 'audit log unavailable'); END",
    )
    .execute(&mut other)
    .await
    .unwrap();
    story::unaudited_writes_fail(&store, &admin).await;
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
            (store.insert_token(&token, &hash, 25, &audit()).await, hash)
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

mod postgres {
    //! The same story on PostgreSQL, and what several nodes on one database need: migrations
    //! that run once when nodes start together, quotas and revisions that hold across nodes,
    //! and the change feed.

    use std::sync::Arc;
    use std::time::Duration;

    use latchkey_core::{Id, Owner, Secret, SecretKind, Token};
    use latchkey_store::testing::fresh_postgres_database;
    use latchkey_store::{Change, PgStore, Store, StoreError};

    use crate::story::audit;

    #[tokio::test]
    async fn postgres_refuses_a_write_it_cannot_audit() {
        use sqlx::Connection;
        let Some(url) = fresh_postgres_database("unaudited").await else {
            return;
        };
        let store = PgStore::open(&url).await.unwrap();
        let admin = crate::story::admin();
        store.create_admin(&admin, &audit()).await.unwrap();
        let mut other = sqlx::PgConnection::connect(&url).await.unwrap();
        for statement in [
            "CREATE FUNCTION no_audit() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN RAISE EXCEPTION 'audit log unavailable'; END $$",
            "CREATE TRIGGER no_audit BEFORE INSERT ON audit_log \
             FOR EACH ROW EXECUTE FUNCTION no_audit()",
        ] {
            sqlx::query(statement).execute(&mut other).await.unwrap();
        }
        crate::story::unaudited_writes_fail(&store, &admin).await;
    }

    /// `nodes` stores opened at once on one fresh database (each as a separate node would).
    async fn nodes(test: &str, nodes: usize) -> Option<Vec<Arc<dyn Store>>> {
        let url = fresh_postgres_database(test).await?;
        let opening = (0..nodes).map(|_| {
            let url = url.clone();
            async move { PgStore::open(&url).await }
        });
        let mut stores = Vec::new();
        for opened in all_at_once(opening).await {
            stores.push(Arc::new(opened.expect("every node opens and migrates")) as Arc<dyn Store>);
        }
        Some(stores)
    }

    /// Runs the futures concurrently on the runtime; their outputs in order.
    async fn all_at_once<F>(futures: impl Iterator<Item = F>) -> Vec<F::Output>
    where
        F: std::future::Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let handles: Vec<_> = futures.map(tokio::spawn).collect();
        let mut out = Vec::new();
        for handle in handles {
            out.push(handle.await.expect("task ran"));
        }
        out
    }

    fn now() -> time::OffsetDateTime {
        time::OffsetDateTime::now_utc()
            .replace_nanosecond(0)
            .unwrap()
    }

    #[tokio::test]
    async fn postgres_passes_the_story() {
        let Some(stores) = nodes("postgres_passes_the_story", 1).await else {
            return;
        };
        super::story::run(stores[0].as_ref()).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn creates_racing_on_two_nodes_never_exceed_the_quota() {
        let Some(stores) = nodes("creates_racing_on_two_nodes", 2).await else {
            return;
        };
        let owner = Owner::Account(Id::random());
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..60 {
            let store = Arc::clone(&stores[i % 2]);
            tasks.spawn(async move {
                let token = Token::new(owner, format!("t{i}"), now());
                let hash = Secret::generate(SecretKind::Account).hash();
                store.insert_token(&token, &hash, 25, &audit()).await
            });
        }
        let results = tasks.join_all().await;
        let accepted = results.iter().filter(|r| r.is_ok()).count();
        let refused = results
            .iter()
            .filter(|r| matches!(r, Err(StoreError::QuotaExceeded(25))))
            .count();
        assert_eq!((accepted, refused), (25, 35), "{results:?}");
        let stored = stores[1].export_tokens(0, 100).await.unwrap();
        assert_eq!(stored.len(), 25, "exactly the accepted tokens are stored");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn racing_updates_and_rolls_on_two_nodes_lose_nothing() {
        let Some(stores) = nodes("racing_updates_and_rolls", 2).await else {
            return;
        };
        let owner = Owner::User(Id::random());
        let token = Token::new(owner, "raced", now());
        stores[0]
            .insert_token(
                &token,
                &Secret::generate(SecretKind::User).hash(),
                10,
                &audit(),
            )
            .await
            .unwrap();
        for round in 0..20 {
            let current = stores[0].get_token(owner, token.id).await.unwrap().unwrap();
            // Both nodes change the token from the same revision, at once.
            let tasks = (0..2).map(|node| {
                let store = Arc::clone(&stores[node]);
                let mut changed = current.clone();
                changed.name = format!("round {round} node {node}");
                async move {
                    if round % 2 == 0 {
                        store.update_token(&changed, &audit()).await
                    } else {
                        let hash = Secret::generate(SecretKind::User).hash();
                        store
                            .roll_token(owner, changed.id, changed.revision, &hash, &audit())
                            .await
                    }
                }
            });
            let results = all_at_once(tasks).await;
            let won: Vec<_> = results.iter().map(|r| r.is_ok()).collect();
            assert_eq!(won.iter().filter(|w| **w).count(), 1, "{results:?}");
            assert!(results
                .iter()
                .any(|r| matches!(r, Err(StoreError::Changed))));
            let after = stores[1].get_token(owner, token.id).await.unwrap().unwrap();
            assert_eq!(after.revision, current.revision + 1);
            if round % 2 == 0 {
                let winner = won.iter().position(|w| *w).unwrap();
                assert_eq!(after.name, format!("round {round} node {winner}"));
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn changes_on_one_node_reach_the_others_feed() {
        let Some(stores) = nodes("changes_reach_the_feed", 2).await else {
            return;
        };
        let mut feed = stores[1].watch().expect("PostgreSQL has a change feed");
        assert_eq!(
            tokio::time::timeout(Duration::from_secs(5), feed.recv()).await,
            Ok(Some(Change::Resync)),
            "listening starts with a resync"
        );
        let owner = Owner::User(Id::random());
        let token = Token::new(owner, "watched", now());
        let hash = Secret::generate(SecretKind::User).hash();
        stores[0]
            .insert_token(&token, &hash, 10, &audit())
            .await
            .unwrap();
        let row = stores[0].token_by_hash(&hash).await.unwrap().unwrap().row;
        stores[0]
            .record_last_used(&[latchkey_store::LastUse {
                row,
                id: token.id,
                at: now(),
            }])
            .await
            .unwrap();
        let mut changed = token.clone();
        changed.name = "renamed".into();
        stores[0].update_token(&changed, &audit()).await.unwrap();
        assert_eq!(
            tokio::time::timeout(Duration::from_secs(5), feed.recv()).await,
            Ok(Some(Change::Token(token.id))),
            "the update is announced (and neither the insert nor the last use)"
        );
        stores[0]
            .delete_token(owner, token.id, &audit())
            .await
            .unwrap();
        assert_eq!(
            tokio::time::timeout(Duration::from_secs(5), feed.recv()).await,
            Ok(Some(Change::Token(token.id)))
        );
    }
}
