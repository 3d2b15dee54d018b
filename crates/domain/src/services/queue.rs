//! Adding, claiming, updating and recovering queue items, and configuring queues.
//!
//! Every write goes through this service so that the HTTP adapter, the background engine and
//! any embedding team apply the same rules: validation of every item rule before anything is
//! stored,
//! the item state machine of [`QueueItem`], and optimistic version checks that make concurrent
//! writers (several robots, several servers) lose a race visibly instead of overwriting.

use std::collections::HashMap;
use std::sync::Arc;

use crate::clock::{Clock, IdGenerator, Timestamp};
use crate::error::{FieldError, RepoError, TransitionError, ValidationError};
use crate::ids::QueueItemId;
use crate::ports::QueueRepository;
use crate::queue::{
    NewQueueItem, Queue, QueueItem, QueueItemStatus, QueueName, QueueSettings, RawQueueItem,
};
use crate::robot::RobotId;

use super::ServiceError;

/// How many times a status update is retried when a concurrent change wins the version race.
const UPDATE_ATTEMPTS: usize = 3;

/// A change to a queue's settings: each `None` keeps the value the queue has (or the default,
/// for a queue that does not exist yet), so a client can change one setting without knowing
/// the others.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SettingsChange {
    pub max_retries: Option<u32>,
    pub lease_seconds: Option<u32>,
    pub unique_reference: Option<bool>,
}

/// The queue use cases.
pub struct QueueService {
    repo: Arc<dyn QueueRepository>,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdGenerator>,
}

impl QueueService {
    /// The most items one request may add.
    pub const MAX_BATCH: usize = 1000;

    /// The most items one claim may hand a robot: enough to batch small items, few enough that
    /// one robot cannot starve the others of a queue's work.
    pub const MAX_CLAIM: u32 = 100;

    pub fn new(
        repo: Arc<dyn QueueRepository>,
        clock: Arc<dyn Clock>,
        ids: Arc<dyn IdGenerator>,
    ) -> Self {
        Self { repo, clock, ids }
    }

    /// Validates every item first and stores all of them or none. In a batch, field names are
    /// prefixed with the item's index (`items[3].queue_name`) so a client can find the culprit.
    pub async fn add_items(
        &self,
        raw: Vec<RawQueueItem>,
        batch: bool,
    ) -> Result<Vec<QueueItem>, ServiceError> {
        if raw.is_empty() {
            return Err(ValidationError::field("items", "must hold at least one item").into());
        }
        if raw.len() > Self::MAX_BATCH {
            return Err(ValidationError::field(
                "items",
                format!("must hold at most {} items", Self::MAX_BATCH),
            )
            .into());
        }
        let mut parsed = Vec::with_capacity(raw.len());
        let mut errors = Vec::new();
        for (i, item) in raw.into_iter().enumerate() {
            match NewQueueItem::parse(item) {
                Ok(item) => parsed.push(item),
                Err(e) => errors.extend(e.errors.into_iter().map(|f| FieldError {
                    field: if batch {
                        format!("items[{i}].{}", f.field)
                    } else {
                        f.field
                    },
                    message: f.message,
                })),
            }
        }
        if !errors.is_empty() {
            return Err(ValidationError { errors }.into());
        }
        let now = self.clock.now();
        let items: Vec<QueueItem> = parsed
            .into_iter()
            .map(|item| item.into_item(QueueItemId::from_uuid(self.ids.new_uuid()), now))
            .collect();
        self.repo.insert_items(&items).await?;
        Ok(items)
    }

    /// Validates and stores one item (PyOrchestrator's `POST /api/queue`). Unlike
    /// [`QueueService::add_items`], the item is written with the storage's per-item insert, so
    /// the adapter may commit it together with other callers' items (group commit) while its
    /// outcome, e.g. a `Conflict` over its reference, stays its own.
    pub async fn add_item(&self, raw: RawQueueItem) -> Result<QueueItem, ServiceError> {
        let item = NewQueueItem::parse(raw)?.into_item(
            QueueItemId::from_uuid(self.ids.new_uuid()),
            self.clock.now(),
        );
        let outcome = self
            .repo
            .insert_each(std::slice::from_ref(&item))
            .await
            .into_iter()
            .next()
            .unwrap_or_else(|| {
                Err(RepoError::Internal(
                    "the storage answered no outcome for the item".to_owned(),
                ))
            });
        outcome?;
        Ok(item)
    }

    /// Sets an item's status (with an optional message) under the domain's transition rules,
    /// on behalf of an operator or integrator, retrying when a concurrent change moved the
    /// version on.
    pub async fn set_status(
        &self,
        id: QueueItemId,
        status: QueueItemStatus,
        message: Option<String>,
    ) -> Result<QueueItem, ServiceError> {
        let message = crate::text::check_optional("message", message, NewQueueItem::MAX_MESSAGE)?;
        self.update_item(id, |item, now| {
            item.set_status(status, message.clone(), now)?;
            Ok(())
        })
        .await
    }

    /// Hands `robot` up to `limit` of the queue's oldest NEW items under a lease. The storage
    /// makes the claim atomic, so concurrent robots never receive the same item; a queue that
    /// does not exist, or holds nothing NEW, gives an empty list.
    pub async fn claim(
        &self,
        queue: &QueueName,
        robot: &RobotId,
        limit: u32,
    ) -> Result<Vec<QueueItem>, ServiceError> {
        if !(1..=Self::MAX_CLAIM).contains(&limit) {
            return Err(ValidationError::field(
                "limit",
                format!("must be between 1 and {}", Self::MAX_CLAIM),
            )
            .into());
        }
        Ok(self
            .repo
            .claim_items(queue, robot, self.clock.now(), limit)
            .await?)
    }

    /// A robot reports the outcome of an item it holds: DONE or FAILED, with an optional
    /// message. Only the robot holding the claim may report, and only while the item is still
    /// IN_PROGRESS under that claim: once its lease expired and the engine put it back to NEW
    /// (or another robot took it), the report is refused with a transition error (409), so a
    /// late robot can never overwrite the work of the next one. A lease that has lapsed but not
    /// been recovered yet still belongs to its robot, so its report is accepted.
    pub async fn report(
        &self,
        id: QueueItemId,
        robot: &RobotId,
        status: QueueItemStatus,
        message: Option<String>,
    ) -> Result<QueueItem, ServiceError> {
        if !matches!(status, QueueItemStatus::Done | QueueItemStatus::Failed) {
            return Err(ValidationError::field("status", "a robot reports DONE or FAILED").into());
        }
        let message = crate::text::check_optional("message", message, NewQueueItem::MAX_MESSAGE)?;
        self.update_item(id, |item, now| {
            ensure_held_by(item, robot)?;
            item.set_status(status, message.clone(), now)?;
            Ok(())
        })
        .await
    }

    /// Changes a queue's settings, creating the queue if it does not exist yet. Settings left
    /// out keep their current values; the result is validated as a whole.
    pub async fn configure(
        &self,
        name: &QueueName,
        change: SettingsChange,
    ) -> Result<Queue, ServiceError> {
        let current = match self.repo.get_queue(name).await {
            Ok(queue) => queue.settings,
            Err(RepoError::NotFound(_)) => QueueSettings::default(),
            Err(other) => return Err(other.into()),
        };
        let settings = QueueSettings::new(
            change.max_retries.unwrap_or(current.max_retries),
            change.lease_seconds.unwrap_or(current.lease_seconds),
            change.unique_reference.unwrap_or(current.unique_reference),
        )?;
        Ok(self
            .repo
            .save_queue_settings(name, &settings, self.clock.now())
            .await?)
    }

    /// Applies lease expiry to items whose claim lapsed: NEW again while retries remain, else
    /// ABANDONED. An item changed meanwhile (completed just in time, or recovered by another
    /// server) is left alone: the version check refuses the stale write. Returns how many items
    /// were recovered.
    pub async fn recover_expired_leases(&self, limit: u32) -> Result<u64, ServiceError> {
        let now = self.clock.now();
        let mut recovered = 0;
        // A round usually holds many items of few queues: read each queue's settings once.
        let mut max_retries: HashMap<String, u32> = HashMap::new();
        for mut item in self.repo.expired_item_leases(now, limit).await? {
            let retries = match max_retries.get(item.queue_name().as_str()) {
                Some(retries) => *retries,
                None => {
                    let queue = self.repo.get_queue(item.queue_name()).await?;
                    let retries = queue.settings.max_retries;
                    max_retries.insert(item.queue_name().as_str().to_owned(), retries);
                    retries
                }
            };
            if item.expire_lease(retries, now).is_err() {
                continue;
            }
            match self.repo.update_item(&item).await {
                Ok(_) => recovered += 1,
                Err(RepoError::Conflict(_) | RepoError::NotFound(_)) => {}
                Err(other) => return Err(other.into()),
            }
        }
        Ok(recovered)
    }

    /// Reads an item, applies `change` at the current time and stores it if nobody changed it
    /// meanwhile; on a lost version race it starts over from the newer item, so the change is
    /// judged against what is really stored.
    async fn update_item<F>(&self, id: QueueItemId, change: F) -> Result<QueueItem, ServiceError>
    where
        F: Fn(&mut QueueItem, Timestamp) -> Result<(), ServiceError> + Send + Sync,
    {
        let mut last = None;
        for _ in 0..UPDATE_ATTEMPTS {
            let mut item = self.repo.get_item(id).await?;
            change(&mut item, self.clock.now())?;
            match self.repo.update_item(&item).await {
                Ok(stored) => return Ok(stored),
                Err(RepoError::Conflict(reason)) => last = Some(RepoError::Conflict(reason)),
                Err(other) => return Err(other.into()),
            }
        }
        Err(last
            .unwrap_or_else(|| RepoError::Conflict("the item keeps changing".to_owned()))
            .into())
    }
}

/// Refuses a robot's report on an item it does not hold: one that is not IN_PROGRESS, or is
/// claimed by another robot (or by none, when an operator set it IN_PROGRESS by hand).
fn ensure_held_by(item: &QueueItem, robot: &RobotId) -> Result<(), TransitionError> {
    if item.status() != QueueItemStatus::InProgress {
        return Err(TransitionError {
            entity: "queue item",
            action: "report the outcome of",
            state: item.status().as_str().to_owned(),
        });
    }
    if item.robot_id() != Some(robot) {
        return Err(TransitionError {
            entity: "queue item",
            action: "report the outcome of",
            state: format!("not claimed by robot '{robot}'"),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::MockQueueRepository;
    use crate::queue::{Queue, QueueName, QueueSettings};
    use time::macros::datetime;

    const NOW: time::OffsetDateTime = datetime!(2025-06-01 12:00 UTC);

    struct FixedClock;
    impl Clock for FixedClock {
        fn now(&self) -> crate::Timestamp {
            NOW
        }
    }

    struct Counter(std::sync::atomic::AtomicU64);
    impl IdGenerator for Counter {
        fn new_uuid(&self) -> uuid::Uuid {
            uuid::Uuid::from_u128(u128::from(
                self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1,
            ))
        }
    }

    fn service(repo: MockQueueRepository) -> QueueService {
        QueueService::new(
            Arc::new(repo),
            Arc::new(FixedClock),
            Arc::new(Counter(0.into())),
        )
    }

    fn raw(queue: &str) -> RawQueueItem {
        RawQueueItem {
            queue_name: queue.to_owned(),
            data: serde_json::json!({"case": 1}),
            ..RawQueueItem::default()
        }
    }

    fn stored_item(status: QueueItemStatus) -> QueueItem {
        let mut item = NewQueueItem::parse(raw("q"))
            .unwrap()
            .into_item(QueueItemId::from_uuid(uuid::Uuid::from_u128(9)), NOW);
        item.edit(|r| r.status = status);
        item
    }

    #[tokio::test]
    async fn valid_items_get_ids_and_server_time_and_are_stored_together() {
        let mut repo = MockQueueRepository::new();
        repo.expect_insert_items()
            .withf(|items| items.len() == 2 && items.iter().all(|i| i.created_date() == NOW))
            .times(1)
            .returning(|_| Ok(()));
        let items = service(repo)
            .add_items(vec![raw("a"), raw("b")], true)
            .await
            .unwrap();
        assert_eq!(
            items[0].id(),
            QueueItemId::from_uuid(uuid::Uuid::from_u128(1))
        );
        assert_eq!(
            items[1].id(),
            QueueItemId::from_uuid(uuid::Uuid::from_u128(2))
        );
        assert_eq!(items[0].data().unwrap().as_str(), r#"{"case":1}"#);
    }

    #[tokio::test]
    async fn one_invalid_item_stores_nothing_and_names_its_index() {
        let mut repo = MockQueueRepository::new();
        repo.expect_insert_items().times(0);
        let err = service(repo)
            .add_items(vec![raw("a"), raw("")], true)
            .await
            .unwrap_err();
        let ServiceError::Invalid(v) = err else {
            panic!("{err:?}")
        };
        assert_eq!(v.errors[0].field, "items[1].queue_name");
    }

    #[tokio::test]
    async fn a_single_item_keeps_plain_field_names() {
        let repo = MockQueueRepository::new();
        let err = service(repo)
            .add_items(vec![raw("")], false)
            .await
            .unwrap_err();
        let ServiceError::Invalid(v) = err else {
            panic!("{err:?}")
        };
        assert_eq!(v.errors[0].field, "queue_name");
    }

    #[tokio::test]
    async fn one_item_is_stored_with_the_per_item_insert() {
        let mut repo = MockQueueRepository::new();
        repo.expect_insert_each()
            .withf(|items| items.len() == 1 && items[0].created_date() == NOW)
            .times(1)
            .returning(|_| vec![Ok(())]);
        repo.expect_insert_items().times(0);
        let item = service(repo).add_item(raw("a")).await.unwrap();
        assert_eq!(item.id(), QueueItemId::from_uuid(uuid::Uuid::from_u128(1)));
        assert_eq!(item.queue_name().as_str(), "a");
    }

    #[tokio::test]
    async fn the_item_outcome_of_the_per_item_insert_is_the_answer() {
        let mut repo = MockQueueRepository::new();
        repo.expect_insert_each()
            .returning(|_| vec![Err(RepoError::Conflict("reference taken".into()))]);
        let err = service(repo).add_item(raw("a")).await.unwrap_err();
        assert!(
            matches!(err, ServiceError::Repo(RepoError::Conflict(_))),
            "{err:?}"
        );

        let mut silent = MockQueueRepository::new();
        silent.expect_insert_each().returning(|_| vec![]);
        let err = service(silent).add_item(raw("a")).await.unwrap_err();
        assert!(
            matches!(err, ServiceError::Repo(RepoError::Internal(_))),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn an_invalid_single_item_is_refused_before_the_storage_is_asked() {
        let mut repo = MockQueueRepository::new();
        repo.expect_insert_each().times(0);
        let err = service(repo).add_item(raw("")).await.unwrap_err();
        let ServiceError::Invalid(v) = err else {
            panic!("{err:?}")
        };
        assert_eq!(v.errors[0].field, "queue_name");
    }

    #[tokio::test]
    async fn batches_are_bounded() {
        let service = service(MockQueueRepository::new());
        assert!(matches!(
            service.add_items(vec![], true).await,
            Err(ServiceError::Invalid(_))
        ));
        let too_many = (0..=QueueService::MAX_BATCH).map(|_| raw("q")).collect();
        assert!(matches!(
            service.add_items(too_many, true).await,
            Err(ServiceError::Invalid(_))
        ));
    }

    #[tokio::test]
    async fn a_status_update_retries_a_lost_version_race() {
        let mut repo = MockQueueRepository::new();
        repo.expect_get_item()
            .times(2)
            .returning(|_| Ok(stored_item(QueueItemStatus::InProgress)));
        let mut calls = 0;
        repo.expect_update_item().times(2).returning(move |item| {
            calls += 1;
            if calls == 1 {
                Err(RepoError::Conflict("raced".into()))
            } else {
                Ok(item.clone())
            }
        });
        let item = service(repo)
            .set_status(
                QueueItemId::from_uuid(uuid::Uuid::from_u128(9)),
                QueueItemStatus::Done,
                Some("ok".into()),
            )
            .await
            .unwrap();
        assert_eq!(item.status(), QueueItemStatus::Done);
        assert_eq!(item.end_date(), Some(NOW));
        assert_eq!(item.message(), Some("ok"));
    }

    #[tokio::test]
    async fn an_illegal_status_change_is_a_transition_error_and_writes_nothing() {
        let mut repo = MockQueueRepository::new();
        repo.expect_get_item()
            .returning(|_| Ok(stored_item(QueueItemStatus::Done)));
        repo.expect_update_item().times(0);
        let err = service(repo)
            .set_status(
                QueueItemId::from_uuid(uuid::Uuid::from_u128(9)),
                QueueItemStatus::New,
                None,
            )
            .await
            .unwrap_err();
        assert!(matches!(err, ServiceError::Transition(_)), "{err:?}");
    }

    #[tokio::test]
    async fn expired_leases_go_back_to_new_or_are_abandoned_per_the_queue_settings() {
        let mut repo = MockQueueRepository::new();
        let mut lapsed = stored_item(QueueItemStatus::InProgress);
        lapsed.edit(|r| r.lease_expires_at = Some(NOW - time::Duration::seconds(1)));
        let mut exhausted = lapsed.clone();
        exhausted.edit(|r| r.retry_count = 3);
        repo.expect_expired_item_leases()
            .returning(move |_, _| Ok(vec![lapsed.clone(), exhausted.clone()]));
        repo.expect_get_queue().returning(|_| {
            Ok(Queue {
                name: QueueName::parse("q").unwrap(),
                settings: QueueSettings::default(),
                created_at: NOW,
            })
        });
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = seen.clone();
        repo.expect_update_item().times(2).returning(move |item| {
            sink.lock().unwrap().push(item.status());
            Ok(item.clone())
        });
        assert_eq!(service(repo).recover_expired_leases(100).await.unwrap(), 2);
        assert_eq!(
            *seen.lock().unwrap(),
            vec![QueueItemStatus::New, QueueItemStatus::Abandoned]
        );
    }
    fn robot(name: &str) -> RobotId {
        RobotId::parse(name).unwrap()
    }

    fn held_by(name: &str) -> QueueItem {
        let mut item = stored_item(QueueItemStatus::New);
        item.claim(robot(name), NOW, 60).unwrap();
        item
    }

    fn queue_with(settings: QueueSettings) -> Queue {
        Queue {
            name: QueueName::parse("q").unwrap(),
            settings,
            created_at: NOW,
        }
    }

    fn item_id() -> QueueItemId {
        QueueItemId::from_uuid(uuid::Uuid::from_u128(9))
    }

    #[tokio::test]
    async fn a_claim_asks_the_storage_for_at_most_limit_items_at_the_current_time() {
        let mut repo = MockQueueRepository::new();
        repo.expect_claim_items()
            .withf(|queue, robot, now, limit| {
                queue.as_str() == "q" && robot.as_str() == "r1" && *now == NOW && *limit == 5
            })
            .times(1)
            .returning(|_, _, _, _| Ok(vec![]));
        let items = service(repo)
            .claim(&QueueName::parse("q").unwrap(), &robot("r1"), 5)
            .await
            .unwrap();
        assert!(items.is_empty());
    }

    #[tokio::test]
    async fn a_claim_limit_outside_1_to_100_is_refused_before_the_storage_is_asked() {
        let service = service(MockQueueRepository::new());
        let queue = QueueName::parse("q").unwrap();
        for limit in [0, QueueService::MAX_CLAIM + 1] {
            let err = service
                .claim(&queue, &robot("r1"), limit)
                .await
                .unwrap_err();
            let ServiceError::Invalid(v) = err else {
                panic!("{err:?}")
            };
            assert_eq!(v.errors[0].field, "limit");
        }
    }

    #[tokio::test]
    async fn the_holding_robot_reports_done_with_a_message_and_end_date() {
        let mut repo = MockQueueRepository::new();
        repo.expect_get_item().returning(|_| Ok(held_by("r1")));
        repo.expect_update_item()
            .times(1)
            .returning(|item| Ok(item.clone()));
        let item = service(repo)
            .report(
                item_id(),
                &robot("r1"),
                QueueItemStatus::Done,
                Some("ok".into()),
            )
            .await
            .unwrap();
        assert_eq!(item.status(), QueueItemStatus::Done);
        assert_eq!(item.end_date(), Some(NOW));
        assert_eq!(item.message(), Some("ok"));
    }

    #[tokio::test]
    async fn another_robot_cannot_report_on_an_item_it_does_not_hold() {
        let mut repo = MockQueueRepository::new();
        repo.expect_get_item().returning(|_| Ok(held_by("r1")));
        repo.expect_update_item().times(0);
        let err = service(repo)
            .report(item_id(), &robot("r2"), QueueItemStatus::Failed, None)
            .await
            .unwrap_err();
        let ServiceError::Transition(t) = err else {
            panic!("{err:?}")
        };
        assert!(t.to_string().contains("not claimed by robot 'r2'"), "{t}");
    }

    #[tokio::test]
    async fn a_robot_cannot_report_on_an_item_that_is_no_longer_in_progress() {
        for status in [QueueItemStatus::New, QueueItemStatus::Done] {
            let mut repo = MockQueueRepository::new();
            let mut item = held_by("r1");
            item.edit(|r| r.status = status);
            repo.expect_get_item().returning(move |_| Ok(item.clone()));
            repo.expect_update_item().times(0);
            let err = service(repo)
                .report(item_id(), &robot("r1"), QueueItemStatus::Done, None)
                .await
                .unwrap_err();
            assert!(matches!(err, ServiceError::Transition(_)), "{err:?}");
        }
    }

    #[tokio::test]
    async fn a_robot_reports_only_done_or_failed_and_a_bounded_message() {
        let service = service(MockQueueRepository::new());
        for status in [
            QueueItemStatus::New,
            QueueItemStatus::InProgress,
            QueueItemStatus::Abandoned,
        ] {
            let err = service
                .report(item_id(), &robot("r1"), status, None)
                .await
                .unwrap_err();
            let ServiceError::Invalid(v) = err else {
                panic!("{err:?}")
            };
            assert_eq!(v.errors[0].field, "status");
        }
        let err = service
            .report(
                item_id(),
                &robot("r1"),
                QueueItemStatus::Done,
                Some("m".repeat(NewQueueItem::MAX_MESSAGE + 1)),
            )
            .await
            .unwrap_err();
        let ServiceError::Invalid(v) = err else {
            panic!("{err:?}")
        };
        assert_eq!(v.errors[0].field, "message");
    }

    #[tokio::test]
    async fn configuring_keeps_the_settings_left_out() {
        let mut repo = MockQueueRepository::new();
        repo.expect_get_queue()
            .returning(|_| Ok(queue_with(QueueSettings::new(7, 30, true).unwrap())));
        repo.expect_save_queue_settings()
            .withf(|_, s, _| *s == QueueSettings::new(7, 90, true).unwrap())
            .times(1)
            .returning(|_, s, _| Ok(queue_with(s.clone())));
        let change = SettingsChange {
            lease_seconds: Some(90),
            ..SettingsChange::default()
        };
        let queue = service(repo)
            .configure(&QueueName::parse("q").unwrap(), change)
            .await
            .unwrap();
        assert_eq!(queue.settings.lease_seconds, 90);
    }

    #[tokio::test]
    async fn configuring_a_new_queue_starts_from_the_defaults() {
        let mut repo = MockQueueRepository::new();
        repo.expect_get_queue()
            .returning(|_| Err(RepoError::NotFound("queue")));
        repo.expect_save_queue_settings()
            .withf(|_, s, _| *s == QueueSettings::new(3, 300, true).unwrap())
            .times(1)
            .returning(|_, s, _| Ok(queue_with(s.clone())));
        let change = SettingsChange {
            unique_reference: Some(true),
            ..SettingsChange::default()
        };
        service(repo)
            .configure(&QueueName::parse("q").unwrap(), change)
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn invalid_settings_are_refused_and_nothing_is_saved() {
        let mut repo = MockQueueRepository::new();
        repo.expect_get_queue()
            .returning(|_| Ok(queue_with(QueueSettings::default())));
        repo.expect_save_queue_settings().times(0);
        let change = SettingsChange {
            max_retries: Some(101),
            lease_seconds: Some(0),
            unique_reference: None,
        };
        let err = service(repo)
            .configure(&QueueName::parse("q").unwrap(), change)
            .await
            .unwrap_err();
        let ServiceError::Invalid(v) = err else {
            panic!("{err:?}")
        };
        let fields: Vec<&str> = v.errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["max_retries", "lease_seconds"]);
    }

    #[tokio::test]
    async fn a_recovery_round_reads_each_queue_once_and_skips_items_that_changed_meanwhile() {
        let mut repo = MockQueueRepository::new();
        let mut lapsed = stored_item(QueueItemStatus::InProgress);
        lapsed.edit(|r| r.lease_expires_at = Some(NOW - time::Duration::seconds(1)));
        let second = lapsed.clone();
        repo.expect_expired_item_leases()
            .returning(move |_, _| Ok(vec![lapsed.clone(), second.clone()]));
        repo.expect_get_queue()
            .times(1)
            .returning(|_| Ok(queue_with(QueueSettings::default())));
        let mut calls = 0;
        repo.expect_update_item().times(2).returning(move |item| {
            calls += 1;
            if calls == 1 {
                Err(RepoError::Conflict("completed just in time".into()))
            } else {
                Ok(item.clone())
            }
        });
        assert_eq!(service(repo).recover_expired_leases(100).await.unwrap(), 1);
    }
}
