//! The store story: what every backend must do, in the order a deployment does it.

use latchkey_core::audit::verify_chain;
use latchkey_core::{AuditAction, AuditEvent, Id, Owner, Secret, SecretKind, Status, Token};
use latchkey_store::{
    Account, AuditQuery, Direction, LastUse, ListQuery, NewAdmin, Store, StoreError, User,
};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

const T0: OffsetDateTime = datetime!(2026-01-01 0:00 UTC);

fn token(owner: Owner, name: &str, issued_on: OffsetDateTime) -> Token {
    Token::new(owner, name, issued_on)
}

/// A fresh user + account + admin token.
pub fn admin() -> NewAdmin {
    let user = User {
        id: Id::random(),
        email: format!("{}@example.com", Id::random()),
        created_on: T0,
    };
    let account = Account {
        id: Id::random(),
        name: "Acme".into(),
        created_on: T0,
    };
    let token = token(Owner::User(user.id), "admin", T0);
    NewAdmin {
        user,
        account,
        token,
        hash: Secret::generate(SecretKind::User).hash(),
    }
}

fn query(page: u64, per_page: u64, direction: Direction, include_expired: bool) -> ListQuery {
    ListQuery {
        page,
        per_page,
        direction,
        include_expired,
        now: T0 + Duration::days(10),
    }
}

/// An audit event for a write of the story.
pub fn audit() -> AuditEvent {
    AuditEvent::new(AuditAction::TokenCreate, T0)
}

pub async fn run(store: &dyn Store) {
    // A fresh database has no users; create_admin writes everything at once.
    assert_eq!(store.count_users().await.unwrap(), 0);
    let admin = admin();
    store.create_admin(&admin, &audit()).await.unwrap();
    assert_eq!(store.count_users().await.unwrap(), 1);
    let user = admin.user.id;
    let account = admin.account.id;
    assert_eq!(store.user(user).await.unwrap(), Some(admin.user.clone()));
    assert_eq!(
        store.account(account).await.unwrap(),
        Some(admin.account.clone())
    );
    assert_eq!(store.user(Id::random()).await.unwrap(), None);
    assert_eq!(
        store.user_by_email(&admin.user.email).await.unwrap(),
        Some(admin.user.clone())
    );
    assert_eq!(
        store.user_by_email("nobody@example.com").await.unwrap(),
        None
    );
    assert_eq!(store.account(Id::random()).await.unwrap(), None);
    let accounts = store.accounts_of(user).await.unwrap();
    assert_eq!(accounts.len(), 1);
    assert_eq!(
        (accounts[0].id, accounts[0].name.as_str()),
        (account, admin.account.name.as_str())
    );
    assert!(store.is_member(account, user).await.unwrap());
    assert_eq!(
        store
            .token_by_hash(&admin.hash)
            .await
            .unwrap()
            .map(|t| t.token),
        Some(admin.token.clone())
    );

    // Emails are unique; memberships need both ends and are not duplicated.
    let dup = User {
        id: Id::random(),
        email: admin.user.email.clone(),
        created_on: T0,
    };
    assert!(matches!(
        store.create_user(&dup).await,
        Err(StoreError::Conflict(_))
    ));
    let other = User {
        id: Id::random(),
        email: "other@example.com".into(),
        created_on: T0,
    };
    store.create_user(&other).await.unwrap();
    assert!(matches!(
        store.add_member(account, user, T0).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(matches!(
        store.add_member(Id::random(), other.id, T0).await,
        Err(StoreError::NotFound)
    ));
    store.add_member(account, other.id, T0).await.unwrap();
    assert_eq!(store.list_members(account).await.unwrap().len(), 2);
    store.remove_member(account, other.id).await.unwrap();
    assert!(!store.is_member(account, other.id).await.unwrap());
    assert!(matches!(
        store.remove_member(account, other.id).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(store.list_users().await.unwrap().len(), 2);
    assert_eq!(store.list_accounts().await.unwrap().len(), 1);

    // Account tokens: quota, ordering, paging, expiry filtering.
    let owner = Owner::Account(account);
    let mut issued = Vec::new();
    for i in 0..7 {
        // Two tokens per second, so the issue-order tie-break matters.
        let mut t = token(owner, &format!("t{i}"), T0 + Duration::seconds(i / 2));
        if i == 6 {
            t.expires_on = Some(T0 + Duration::days(1));
        }
        let hash = Secret::generate(SecretKind::Account).hash();
        store.insert_token(&t, &hash, 7, &audit()).await.unwrap();
        issued.push((t, hash));
    }
    let extra = token(owner, "over quota", T0);
    assert!(matches!(
        store
            .insert_token(
                &extra,
                &Secret::generate(SecretKind::Account).hash(),
                7,
                &audit()
            )
            .await,
        Err(StoreError::QuotaExceeded(7))
    ));

    let names = |page: &latchkey_store::Page<Token>| {
        page.items
            .iter()
            .map(|t| t.name.clone())
            .collect::<Vec<_>>()
    };
    let asc = store
        .list_tokens(owner, &query(1, 50, Direction::Asc, false))
        .await
        .unwrap();
    assert_eq!(asc.total, 6, "the expired token is hidden");
    assert_eq!(names(&asc), ["t0", "t1", "t2", "t3", "t4", "t5"]);
    let desc = store
        .list_tokens(owner, &query(1, 50, Direction::Desc, true))
        .await
        .unwrap();
    assert_eq!(names(&desc), ["t6", "t5", "t4", "t3", "t2", "t1", "t0"]);
    let page2 = store
        .list_tokens(owner, &query(2, 5, Direction::Asc, true))
        .await
        .unwrap();
    assert_eq!(
        (names(&page2), page2.total),
        (vec!["t5".into(), "t6".into()], 7)
    );
    let past_end = store
        .list_tokens(owner, &query(9, 5, Direction::Asc, true))
        .await
        .unwrap();
    assert!(past_end.items.is_empty());
    // Other owners see nothing of these.
    let none = store
        .list_tokens(Owner::User(user), &query(1, 50, Direction::Asc, true))
        .await
        .unwrap();
    assert_eq!(names(&none), ["admin"]);

    // Update replaces fields; roll replaces the hash; delete removes; wrong owner = not found.
    let (first, first_hash) = issued[0].clone();
    let mut changed = first.clone();
    changed.name = "renamed".into();
    changed.status = Status::Disabled;
    changed.modified_on = T0 + Duration::days(2);
    store.update_token(&changed, &audit()).await.unwrap();
    changed.revision += 1;
    assert_eq!(
        store.get_token(owner, first.id).await.unwrap(),
        Some(changed.clone())
    );
    // A change made from the old revision loses: nothing is overwritten.
    let mut stale = first.clone();
    stale.name = "stale".into();
    assert!(matches!(
        store.update_token(&stale, &audit()).await,
        Err(StoreError::Changed)
    ));
    assert!(matches!(
        store
            .roll_token(owner, first.id, first.revision, &first_hash, &audit())
            .await,
        Err(StoreError::Changed)
    ));
    assert_eq!(
        store.get_token(owner, first.id).await.unwrap(),
        Some(changed.clone())
    );
    assert_eq!(
        store.get_token(Owner::User(user), first.id).await.unwrap(),
        None
    );

    let row = store.token_by_hash(&first_hash).await.unwrap().unwrap().row;
    let new_hash = Secret::generate(SecretKind::Account).hash();
    store
        .roll_token(owner, first.id, changed.revision, &new_hash, &audit())
        .await
        .unwrap();
    changed.revision += 1;
    assert_eq!(store.token_by_hash(&first_hash).await.unwrap(), None);
    assert_eq!(
        store
            .token_by_hash(&new_hash)
            .await
            .unwrap()
            .map(|t| (t.token.id, t.row)),
        Some((first.id, row)),
        "a roll keeps the token's row"
    );

    let used_at = |id, days| LastUse {
        row,
        id,
        at: T0 + Duration::days(days),
    };
    store
        .record_last_used(&[used_at(first.id, 3), used_at(first.id, 1)])
        .await
        .unwrap();
    let used = store.get_token(owner, first.id).await.unwrap().unwrap();
    assert_eq!(used.last_used_on, Some(T0 + Duration::days(3)));
    store
        .record_last_used(&[used_at(Id::random(), 5), used_at(first.id, 2)])
        .await
        .unwrap();
    let used = store.get_token(owner, first.id).await.unwrap().unwrap();
    assert_eq!(
        used.last_used_on,
        Some(T0 + Duration::days(3)),
        "neither another token's use of the row nor an older use is recorded"
    );
    assert_eq!(
        used.modified_on, changed.modified_on,
        "use is not a modification"
    );

    assert!(matches!(
        store
            .delete_token(Owner::User(user), first.id, &audit())
            .await,
        Err(StoreError::NotFound)
    ));
    store.delete_token(owner, first.id, &audit()).await.unwrap();
    assert_eq!(store.get_token(owner, first.id).await.unwrap(), None);
    assert!(matches!(
        store.delete_token(owner, first.id, &audit()).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store.update_token(&changed, &audit()).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        store
            .roll_token(owner, first.id, changed.revision, &new_hash, &audit())
            .await,
        Err(StoreError::NotFound)
    ));
    // The delete freed a place under the quota of 7 (six remain), and only one.
    let refill = token(owner, "refill", T0);
    store
        .insert_token(
            &refill,
            &Secret::generate(SecretKind::Account).hash(),
            7,
            &audit(),
        )
        .await
        .unwrap();
    let again = token(owner, "again", T0);
    assert!(matches!(
        store
            .insert_token(
                &again,
                &Secret::generate(SecretKind::Account).hash(),
                7,
                &audit()
            )
            .await,
        Err(StoreError::QuotaExceeded(7))
    ));
    // The bulk path inserts many at once, with no quota, in issue order.
    let bulk_owner = Owner::Account(Id::random());
    let bulk: Vec<(Token, latchkey_core::SecretHash)> = (0..2500)
        .map(|i| {
            (
                token(bulk_owner, &format!("bulk{i}"), T0 + Duration::seconds(i)),
                Secret::generate(SecretKind::Account).hash(),
            )
        })
        .collect();
    assert_eq!(store.import_tokens(&bulk, &audit()).await.unwrap(), 2500);
    let last = store
        .list_tokens(bulk_owner, &query(50, 50, Direction::Asc, true))
        .await
        .unwrap();
    assert_eq!(last.total, 2500);
    assert_eq!(last.items.last().unwrap().name, "bulk2499");
    assert_eq!(
        store
            .token_by_hash(&bulk[1234].1)
            .await
            .unwrap()
            .map(|t| t.token.id),
        Some(bulk[1234].0.id)
    );
    assert!(matches!(
        store.import_tokens(&bulk[..1], &audit()).await,
        Err(StoreError::Conflict(_))
    ));
    // The export walks every token with its hash, in issue order, page by page.
    let mut exported = Vec::new();
    let mut cursor = 0;
    loop {
        let page = store.export_tokens(cursor, 1000).await.unwrap();
        let Some((last, _, _)) = page.last() else {
            break;
        };
        cursor = *last;
        exported.extend(page.into_iter().map(|(_, token, hash)| (token, hash)));
    }
    assert_eq!(exported.len(), 1 + 7 + 2500, "admin, the 7 kept, the bulk");
    let (bulk_export, bulk_hash) = exported
        .iter()
        .find(|(t, _)| t.id == bulk[1234].0.id)
        .unwrap();
    assert_eq!(bulk_export, &bulk[1234].0);
    assert_eq!(bulk_hash, &bulk[1234].1);
    let positions: Vec<_> = exported
        .iter()
        .filter(|(t, _)| t.owner == bulk_owner)
        .map(|(t, _)| t.name.clone())
        .collect();
    assert_eq!(positions[0], "bulk0");
    assert_eq!(positions[2499], "bulk2499");
    store.ping().await.unwrap();

    // The audit log: one entry per write that happened, chained.
    let all = store.audit_entries(0, 100_000).await.unwrap();
    assert!(all.len() > 10, "{} entries", all.len());
    assert_eq!(verify_chain(&all, 0, [0; 32]).unwrap().0, all.len() as u64);
    // A refused write records nothing.
    assert!(store.import_tokens(&bulk[..1], &audit()).await.is_err());
    assert_eq!(
        store.audit_entries(0, 100_000).await.unwrap().len(),
        all.len()
    );
    // The entries about one owner, in pages, newest first, within a time range.
    let owner = Owner::Account(Id::random());
    for n in 0..3 {
        let mut event = audit();
        event.owner = Some(owner);
        event.client_ip = Some("192.0.2.9".parse().unwrap());
        event.details = format!("{{\"n\":{n}}}");
        store.append_audit(&event).await.unwrap();
    }
    let audit_query = |per_page, since, before| AuditQuery {
        page: 1,
        per_page,
        direction: Direction::Desc,
        since,
        before,
    };
    let page = store
        .list_audit(owner, &audit_query(2, None, None))
        .await
        .unwrap();
    assert_eq!((page.total, page.items.len()), (3, 2));
    assert_eq!(page.items[0].event.details, "{\"n\":2}");
    assert_eq!(page.items[0].event.owner, Some(owner));
    assert_eq!(
        page.items[0].event.client_ip,
        Some("192.0.2.9".parse().unwrap())
    );
    let since = store
        .list_audit(owner, &audit_query(50, Some(T0), None))
        .await
        .unwrap();
    let before = store
        .list_audit(owner, &audit_query(50, None, Some(T0)))
        .await
        .unwrap();
    assert_eq!((since.total, before.total), (3, 0));
    // Read in two runs, as `latchkey audit verify` does, the chain still holds.
    let (seq, hash) = verify_chain(&store.audit_entries(0, 5).await.unwrap(), 0, [0; 32]).unwrap();
    let rest = store.audit_entries(seq, 100_000).await.unwrap();
    assert_eq!(
        verify_chain(&rest, seq, hash).unwrap().0,
        all.len() as u64 + 3
    );
}

/// With the audit log refusing every entry, every token write fails and changes nothing.
/// `admin` was created before the log was blocked.
pub async fn unaudited_writes_fail(store: &dyn Store, admin: &NewAdmin) {
    let entries = store.audit_entries(0, 100).await.unwrap().len();
    let owner = admin.token.owner;
    let fresh = token(owner, "never stored", T0);
    let fresh_hash = Secret::generate(SecretKind::User).hash();
    assert!(store
        .insert_token(&fresh, &fresh_hash, 10, &audit())
        .await
        .is_err());
    let mut renamed = admin.token.clone();
    renamed.name = "renamed".into();
    assert!(store.update_token(&renamed, &audit()).await.is_err());
    let new_hash = Secret::generate(SecretKind::User).hash();
    assert!(store
        .roll_token(owner, admin.token.id, 0, &new_hash, &audit())
        .await
        .is_err());
    assert!(store
        .delete_token(owner, admin.token.id, &audit())
        .await
        .is_err());
    assert!(store.append_audit(&audit()).await.is_err());
    // Nothing happened.
    assert_eq!(store.token_by_hash(&fresh_hash).await.unwrap(), None);
    assert_eq!(store.token_by_hash(&new_hash).await.unwrap(), None);
    let kept = store.token_by_hash(&admin.hash).await.unwrap().unwrap();
    assert_eq!(
        (kept.token.name.as_str(), kept.token.revision),
        ("admin", 0)
    );
    assert_eq!(store.audit_entries(0, 100).await.unwrap().len(), entries);
}
