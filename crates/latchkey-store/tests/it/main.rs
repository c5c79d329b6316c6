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
