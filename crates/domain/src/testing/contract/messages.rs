//! `MessageRepository`.

// Helpers here are not `#[test]` functions, so clippy's test exemption does not reach them; a
// failed unwrap in a contract test is a failed assertion with a location.
#![allow(clippy::unwrap_used)]

use super::SharedStore;
use baton_domain::RepoError;
use baton_domain::agent::Message;
use baton_domain::ids::MessageId;
use serde_json::json;

use super::fixtures::{T0, at};
use super::workflows::{agent_id, message, message_id, micros, stored_workflow};

fn ids(messages: &[Message]) -> Vec<MessageId> {
    messages.iter().map(|m| m.id).collect()
}

pub async fn messages_read_back_as_written(db: SharedStore) {
    let (_, agents) = stored_workflow(&db, 1).await;
    let agent = agents[0].id;
    let with_everything = message(
        1,
        agent,
        micros(at(1), 123_456),
        Some(micros(at(3_600), 654_321)),
    );
    let bare = Message {
        job_id: None,
        expires_at: None,
        payload: json!("just text"),
        ..message(2, agent, micros(at(2), 1), None)
    };
    db.insert_messages(&[with_everything.clone(), bare.clone()])
        .await
        .unwrap();
    assert_eq!(
        db.get_message(with_everything.id, T0).await.unwrap(),
        with_everything
    );
    assert_eq!(db.get_message(bare.id, T0).await.unwrap(), bare);
    assert_eq!(
        db.list_messages(agent, None, None, T0).await.unwrap(),
        vec![bare, with_everything]
    );
}

pub async fn an_empty_batch_is_accepted(db: SharedStore) {
    db.insert_messages(&[]).await.unwrap();
}

pub async fn messages_of_an_unknown_agent_are_not_found_and_nothing_is_written(db: SharedStore) {
    let (_, agents) = stored_workflow(&db, 1).await;
    let known = message(1, agents[0].id, at(1), None);
    let unknown = message(2, agent_id(999), at(2), None);
    let err = db
        .insert_messages(&[known.clone(), unknown])
        .await
        .unwrap_err();
    assert!(matches!(err, RepoError::NotFound(_)), "{err:?}");
    assert!(
        db.list_messages(agents[0].id, None, None, T0)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(matches!(
        db.get_message(known.id, T0).await,
        Err(RepoError::NotFound(_))
    ));
}

pub async fn a_duplicate_message_id_conflicts(db: SharedStore) {
    let (_, agents) = stored_workflow(&db, 1).await;
    let first = message(1, agents[0].id, at(1), None);
    db.insert_messages(std::slice::from_ref(&first))
        .await
        .unwrap();
    let again = message(1, agents[1].id, at(5), None);
    let err = db
        .insert_messages(&[message(2, agents[0].id, at(2), None), again])
        .await
        .unwrap_err();
    assert!(matches!(err, RepoError::Conflict(_)), "{err:?}");
    assert_eq!(
        ids(&db
            .list_messages(agents[0].id, None, None, T0)
            .await
            .unwrap()),
        [first.id],
        "the batch left nothing"
    );
}

pub async fn listing_is_newest_first_strictly_after_and_limited(db: SharedStore) {
    let (_, agents) = stored_workflow(&db, 1).await;
    let (agent, other) = (agents[0].id, agents[1].id);
    let now = at(1_000);
    db.insert_messages(&[
        message(1, agent, micros(at(1), 1), None),
        message(2, agent, micros(at(2), 2), Some(at(2_000))),
        message(3, agent, micros(at(3), 3), None),
        message(4, agent, micros(at(4), 4), Some(at(500))),
        message(5, agent, micros(at(5), 5), Some(now)),
        message(6, agent, micros(at(6), 6), None),
        message(7, other, micros(at(7), 7), None),
    ])
    .await
    .unwrap();

    let all = db.list_messages(agent, None, None, now).await.unwrap();
    assert_eq!(
        ids(&all),
        [message_id(6), message_id(3), message_id(2), message_id(1)],
        "expired ones are hidden"
    );

    let after = db
        .list_messages(agent, Some(micros(at(2), 2)), None, now)
        .await
        .unwrap();
    assert_eq!(
        ids(&after),
        [message_id(6), message_id(3)],
        "`after` is strictly after"
    );
    let just_before = db
        .list_messages(agent, Some(micros(at(2), 1)), None, now)
        .await
        .unwrap();
    assert_eq!(
        ids(&just_before),
        [message_id(6), message_id(3), message_id(2)]
    );

    let limited = db.list_messages(agent, None, Some(2), now).await.unwrap();
    assert_eq!(ids(&limited), [message_id(6), message_id(3)]);
    let both = db
        .list_messages(agent, Some(at(1)), Some(1), now)
        .await
        .unwrap();
    assert_eq!(ids(&both), [message_id(6)]);
    assert!(
        db.list_messages(agent, None, Some(0), now)
            .await
            .unwrap()
            .is_empty()
    );
}

pub async fn an_expired_message_is_not_found_then_purged(db: SharedStore) {
    let (_, agents) = stored_workflow(&db, 1).await;
    let agent = agents[0].id;
    let now = micros(at(100), 250);
    db.insert_messages(&[
        message(1, agent, at(1), Some(micros(now, -1))),
        message(2, agent, at(2), Some(now)),
        message(3, agent, at(3), Some(micros(now, 1))),
        message(4, agent, at(4), None),
    ])
    .await
    .unwrap();

    for expired in [1, 2] {
        let err = db.get_message(message_id(expired), now).await.unwrap_err();
        assert!(
            matches!(err, RepoError::NotFound(_)),
            "message {expired}: {err:?}"
        );
    }
    assert!(db.get_message(message_id(3), now).await.is_ok());
    assert!(
        db.get_message(message_id(1), at(0)).await.is_ok(),
        "not expired earlier on"
    );

    assert_eq!(db.purge_expired_messages(now).await.unwrap(), 2);
    assert_eq!(db.purge_expired_messages(now).await.unwrap(), 0);
    let left = db.list_messages(agent, None, None, at(0)).await.unwrap();
    assert_eq!(
        ids(&left),
        [message_id(4), message_id(3)],
        "only expired messages were purged"
    );
}

/// The tests of this module, for [`contract_suite!`](crate::contract_suite).
#[doc(hidden)]
#[macro_export]
macro_rules! __contract_messages {
    ($($backend:ident => $fixture:expr),+) => {
        $crate::__contract_module!(messages [
    messages_read_back_as_written,
    an_empty_batch_is_accepted,
    messages_of_an_unknown_agent_are_not_found_and_nothing_is_written,
    a_duplicate_message_id_conflicts,
    listing_is_newest_first_strictly_after_and_limited,
    an_expired_message_is_not_found_then_purged,
        ] $($backend => $fixture),+);
    };
}
