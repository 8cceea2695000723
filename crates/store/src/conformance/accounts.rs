//! Organisations, users, API tokens and password resets.

use std::collections::HashSet;
use std::sync::Arc;

use chrono::Utc;
use uuid::Uuid;

use crate::{NewOrganisation, NewToken, NotifyPref, OrgKind, Role, Store, StoreError, UserPatch};

use super::Harness;
use super::fixtures::*;

pub async fn migrate_is_idempotent(store: Arc<dyn Store>, _h: &dyn Harness) {
    store
        .migrate()
        .await
        .expect("migrating again changes nothing");
    store.ping().await.expect("ping");
    assert!(matches!(store.backend(), "sqlite" | "postgres"));
}

pub async fn orgs_users_and_roles(store: Arc<dyn Store>, _h: &dyn Harness) {
    let s = store.as_ref();
    let w = world(s).await;
    // Organisations: hierarchy, lookups, duplicates.
    assert_eq!(s.get_org(w.unit.id).await.unwrap(), w.unit);
    assert_eq!(w.unit.parent_id, Some(w.city.id));
    let mut got = s
        .get_orgs(&[w.city.id, w.unit.id, Uuid::now_v7()])
        .await
        .unwrap();
    got.sort_by_key(|o| o.id);
    let mut want = vec![w.city.clone(), w.unit.clone()];
    want.sort_by_key(|o| o.id);
    assert_eq!(got, want, "unknown ids are left out");
    let all = s.list_orgs().await.unwrap();
    assert_eq!(all.len(), 6);
    assert_eq!(
        all[0].kind,
        OrgKind::Province,
        "the province is listed first"
    );
    let dup = s
        .create_org(NewOrganisation {
            name: w.unit.name.clone(),
            kind: OrgKind::Unit,
            parent_id: Some(w.city.id),
        })
        .await;
    assert!(
        matches!(
            dup,
            Err(StoreError::Duplicate {
                what: "organisation",
                ..
            })
        ),
        "{dup:?}"
    );
    let orphan = s
        .create_org(NewOrganisation {
            name: "无上级单位".into(),
            kind: OrgKind::Unit,
            parent_id: Some(Uuid::now_v7()),
        })
        .await;
    assert!(
        matches!(orphan, Err(StoreError::NotFound { .. })),
        "{orphan:?}"
    );
    // Every kind of organisation (issue 12, migration 0004) is kept and read back.
    for (n, kind) in [
        OrgKind::Provincial,
        OrgKind::ProtectionCentre,
        OrgKind::ThirdParty,
    ]
    .into_iter()
    .enumerate()
    {
        let org = s
            .create_org(NewOrganisation {
                name: format!("省级单位{n}"),
                kind,
                parent_id: Some(all[0].id),
            })
            .await
            .unwrap();
        assert_eq!(s.get_org(org.id).await.unwrap().kind, kind);
    }
    assert!(matches!(
        s.get_org(Uuid::now_v7()).await,
        Err(StoreError::NotFound { .. })
    ));

    // Users: lookups by id, name and e-mail (case-insensitive), with roles.
    assert_eq!(s.get_user(w.applicant.id).await.unwrap(), w.applicant);
    assert_eq!(w.applicant.roles, vec![Role::Applicant]);
    assert!(w.applicant.active);
    assert_eq!(w.applicant.notify_pref, NotifyPref::Immediate);
    let (found, hash) = s
        .find_user_by_username("manager")
        .await
        .unwrap()
        .expect("found");
    assert_eq!(found, w.manager);
    assert!(
        hash.ends_with("$manager"),
        "the stored password hash comes back"
    );
    assert!(s.find_user_by_username("nobody").await.unwrap().is_none());
    assert_eq!(
        s.find_user_by_email("MANAGER@Example.org").await.unwrap(),
        Some(w.manager.clone())
    );
    let some = s.get_users(&[w.expert.id, w.admin.id]).await.unwrap();
    assert_eq!(some.len(), 2);
    assert_eq!(s.list_users().await.unwrap().len(), 10);
    assert!(matches!(
        s.get_user(Uuid::now_v7()).await,
        Err(StoreError::NotFound { .. })
    ));

    // Duplicates: username, and e-mail whatever its case.
    let mut same_name = new_user("applicant", Some(&w.unit), &[]);
    same_name.email = "another@example.org".into();
    let e = s.create_user(same_name).await;
    assert!(
        matches!(&e, Err(StoreError::Duplicate { what: "username", value }) if value == "applicant"),
        "{e:?}"
    );
    let mut same_mail = new_user("someone_else", None, &[]);
    same_mail.email = "Applicant@EXAMPLE.org".into();
    let e = s.create_user(same_mail).await;
    assert!(
        matches!(e, Err(StoreError::Duplicate { what: "email", .. })),
        "{e:?}"
    );

    // Patch: roles replaced, other fields kept.
    let patched = s
        .update_user(
            w.expert.id,
            UserPatch {
                display_name: Some("王专家".into()),
                roles: Some(vec![Role::Expert, Role::Auditor]),
                lang: Some(grantflow_domain::Lang::En),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(patched.display_name, "王专家");
    assert_eq!(patched.roles, vec![Role::Expert, Role::Auditor]);
    assert_eq!(patched.lang, grantflow_domain::Lang::En);
    assert_eq!(patched.email, w.expert.email);
    assert_eq!(s.get_user(w.expert.id).await.unwrap(), patched);
    let e = s
        .update_user(
            w.expert.id,
            UserPatch {
                email: Some(w.admin.email.clone()),
                ..Default::default()
            },
        )
        .await;
    assert!(
        matches!(e, Err(StoreError::Duplicate { what: "email", .. })),
        "{e:?}"
    );

    // Role queries: active users only, optionally within organisations.
    let applicants = s.users_with_role(Role::Applicant, None).await.unwrap();
    assert_eq!(applicants.len(), 4);
    let in_unit = s
        .users_with_role(Role::Applicant, Some(&[w.unit.id]))
        .await
        .unwrap();
    let names: HashSet<_> = in_unit.iter().map(|u| u.username.as_str()).collect();
    assert_eq!(names, HashSet::from(["applicant", "applicant2"]));
    s.update_user(
        w.applicant_digest.id,
        UserPatch {
            active: Some(false),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let in_unit = s
        .users_with_role(Role::Applicant, Some(&[w.unit.id]))
        .await
        .unwrap();
    assert_eq!(in_unit.len(), 1, "deactivated users are left out");
    assert!(
        s.users_with_role(Role::Applicant, Some(&[]))
            .await
            .unwrap()
            .is_empty()
    );

    s.set_password_hash(w.applicant.id, "new-hash")
        .await
        .unwrap();
    let (_, hash) = s.find_user_by_username("applicant").await.unwrap().unwrap();
    assert_eq!(hash, "new-hash");
    assert!(matches!(
        s.set_password_hash(Uuid::now_v7(), "x").await,
        Err(StoreError::NotFound { .. })
    ));
}

pub async fn tokens(store: Arc<dyn Store>, _h: &dyn Harness) {
    let s = store.as_ref();
    let w = world(s).await;
    let now = Utc::now();
    let session = s
        .create_token(NewToken {
            user_id: w.applicant.id,
            token_hash: "a".repeat(64),
            kind: "session".into(),
            name: None,
            scopes: vec![],
            expires_at: Some(now + chrono::Duration::hours(8)),
        })
        .await
        .unwrap();
    let api = s
        .create_token(NewToken {
            user_id: w.applicant.id,
            token_hash: "b".repeat(64),
            kind: "api".into(),
            name: Some("reporting".into()),
            scopes: vec!["instances:read".into()],
            expires_at: None,
        })
        .await
        .unwrap();
    let found = s
        .find_token(&"b".repeat(64))
        .await
        .unwrap()
        .expect("found by hash");
    assert_eq!(found, api);
    assert_eq!(found.scopes, vec!["instances:read".to_string()]);
    assert!(s.find_token(&"c".repeat(64)).await.unwrap().is_none());
    let dup = s
        .create_token(NewToken {
            user_id: w.manager.id,
            token_hash: "a".repeat(64),
            kind: "session".into(),
            name: None,
            scopes: vec![],
            expires_at: None,
        })
        .await;
    assert!(matches!(dup, Err(StoreError::Duplicate { .. })), "{dup:?}");
    assert_eq!(s.list_tokens(w.applicant.id).await.unwrap().len(), 2);

    s.revoke_token(session.id, now).await.unwrap();
    let revoked = s.find_token(&"a".repeat(64)).await.unwrap().unwrap();
    assert!(revoked.revoked_at.is_some());
    assert!(matches!(
        s.revoke_token(Uuid::now_v7(), now).await,
        Err(StoreError::NotFound { .. })
    ));
    assert_eq!(
        s.revoke_user_tokens(w.applicant.id, now).await.unwrap(),
        1,
        "only the live one"
    );
    assert!(
        s.list_tokens(w.applicant.id)
            .await
            .unwrap()
            .iter()
            .all(|t| t.revoked_at.is_some())
    );
    assert_eq!(s.revoke_user_tokens(w.applicant.id, now).await.unwrap(), 0);
}

pub async fn reset_tokens(store: Arc<dyn Store>, _h: &dyn Harness) {
    let s = store.as_ref();
    let w = world(s).await;
    let now = Utc::now();
    for hash in ["s1", "s2"] {
        s.create_token(NewToken {
            user_id: w.applicant.id,
            token_hash: hash.into(),
            kind: "session".into(),
            name: None,
            scopes: vec![],
            expires_at: None,
        })
        .await
        .unwrap();
    }
    s.create_reset_token(
        w.applicant.id,
        "expired",
        now - chrono::Duration::minutes(1),
    )
    .await
    .unwrap();
    s.create_reset_token(w.applicant.id, "good", now + chrono::Duration::hours(1))
        .await
        .unwrap();
    for bad in ["unknown", "expired"] {
        assert!(matches!(
            s.check_reset_token(bad, now).await,
            Err(StoreError::InvalidToken)
        ));
    }
    assert_eq!(
        s.check_reset_token("good", now).await.unwrap(),
        w.applicant.id,
        "checking does not consume"
    );
    assert_eq!(
        s.check_reset_token("good", now).await.unwrap(),
        w.applicant.id
    );
    assert!(matches!(
        s.consume_reset_token("unknown", now, "h").await,
        Err(StoreError::InvalidToken)
    ));
    assert!(matches!(
        s.consume_reset_token("expired", now, "h").await,
        Err(StoreError::InvalidToken)
    ));
    let (_, before) = s.find_user_by_username("applicant").await.unwrap().unwrap();
    assert_ne!(
        before, "new-password-hash",
        "a refused token changes nothing"
    );
    let user = s
        .consume_reset_token("good", now, "new-password-hash")
        .await
        .unwrap();
    assert_eq!(user, w.applicant.id);
    let (_, after) = s.find_user_by_username("applicant").await.unwrap().unwrap();
    assert_eq!(after, "new-password-hash");
    let tokens = s.list_tokens(w.applicant.id).await.unwrap();
    assert!(
        tokens.iter().all(|t| t.revoked_at.is_some()),
        "every session ends with a reset"
    );
    assert!(
        matches!(
            s.consume_reset_token("good", now, "again").await,
            Err(StoreError::InvalidToken)
        ),
        "a reset token is single use"
    );
    let (_, still) = s.find_user_by_username("applicant").await.unwrap().unwrap();
    assert_eq!(still, "new-password-hash");
    assert!(matches!(
        s.check_reset_token("good", now).await,
        Err(StoreError::InvalidToken)
    ));
    // A password change keeps the session that made it and ends every other one.
    let mut ids = Vec::new();
    for hash in ["c1", "c2", "c3"] {
        let t = s
            .create_token(NewToken {
                user_id: w.applicant.id,
                token_hash: hash.into(),
                kind: "session".into(),
                name: None,
                scopes: vec![],
                expires_at: None,
            })
            .await
            .unwrap();
        ids.push(t.id);
    }
    let revoked = s
        .change_password(w.applicant.id, "changed-hash", ids[0], now)
        .await
        .unwrap();
    assert_eq!(revoked, 2);
    let (_, changed) = s.find_user_by_username("applicant").await.unwrap().unwrap();
    assert_eq!(changed, "changed-hash");
    for t in s.list_tokens(w.applicant.id).await.unwrap() {
        if ids.contains(&t.id) {
            assert_eq!(t.revoked_at.is_none(), t.id == ids[0], "{:?}", t.id);
        }
    }
}
