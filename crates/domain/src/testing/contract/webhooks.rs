//! `WebhookRepository`.

#![allow(clippy::unwrap_used)]

use super::SharedStore;
use baton_domain::RepoError;
use baton_domain::job::Priority;
use baton_domain::webhook::Webhook;
use baton_domain::workflow::ExecutionMode;

use super::fixtures::at;
use super::workflows::{micros, stored_workflow, workflow_id};

fn webhook(hash: &str, workflow: baton_domain::ids::WorkflowId) -> Webhook {
    Webhook {
        token_hash: hash.to_owned(),
        workflow_id: workflow,
        priority: Priority::new(3).unwrap(),
        execution_mode: ExecutionMode::Internet,
        created_at: micros(at(5), 123_456),
    }
}

pub async fn webhooks_are_found_by_their_hash_as_written(db: SharedStore) {
    let (wf, _) = stored_workflow(&db, 1).await;
    let stored = webhook(&"a".repeat(64), wf.id);
    db.insert_webhook(&stored).await.unwrap();
    assert_eq!(
        db.find_webhook_by_token_hash(&stored.token_hash)
            .await
            .unwrap(),
        stored
    );
    assert!(matches!(
        db.find_webhook_by_token_hash(&"b".repeat(64)).await,
        Err(RepoError::NotFound("webhook"))
    ));
}

pub async fn a_hash_is_stored_once_and_only_for_a_known_workflow(db: SharedStore) {
    let (wf, _) = stored_workflow(&db, 1).await;
    let stored = webhook(&"a".repeat(64), wf.id);
    db.insert_webhook(&stored).await.unwrap();
    assert!(matches!(
        db.insert_webhook(&stored).await,
        Err(RepoError::Conflict(_))
    ));
    assert!(matches!(
        db.insert_webhook(&webhook(&"c".repeat(64), workflow_id(999)))
            .await,
        Err(RepoError::NotFound("workflow"))
    ));
}

pub async fn webhooks_go_with_their_workflow(db: SharedStore) {
    let (first, _) = stored_workflow(&db, 1).await;
    let (second, _) = stored_workflow(&db, 2).await;
    db.insert_webhook(&webhook(&"a".repeat(64), first.id))
        .await
        .unwrap();
    db.insert_webhook(&webhook(&"b".repeat(64), first.id))
        .await
        .unwrap();
    db.insert_webhook(&webhook(&"c".repeat(64), second.id))
        .await
        .unwrap();
    assert_eq!(db.delete_webhooks_of(first.id).await.unwrap(), 2);
    assert!(
        db.find_webhook_by_token_hash(&"a".repeat(64))
            .await
            .is_err()
    );
    // Deleting the workflow itself takes its webhooks too (the foreign key cascades).
    db.delete_workflow(second.id).await.unwrap();
    assert!(
        db.find_webhook_by_token_hash(&"c".repeat(64))
            .await
            .is_err()
    );
    assert_eq!(db.delete_webhooks_of(second.id).await.unwrap(), 0);
}

/// The tests of this module, for [`contract_suite!`](crate::contract_suite).
#[doc(hidden)]
#[macro_export]
macro_rules! __contract_webhooks {
    ($($backend:ident => $fixture:expr),+) => {
        $crate::__contract_module!(webhooks [
    webhooks_are_found_by_their_hash_as_written,
    a_hash_is_stored_once_and_only_for_a_known_workflow,
    webhooks_go_with_their_workflow
        ] $($backend => $fixture),+);
    };
}
