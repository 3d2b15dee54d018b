//! Adding, updating and recovering queue items.

use std::sync::Arc;

use crate::clock::{Clock, IdGenerator};
use crate::error::{FieldError, RepoError, ValidationError};
use crate::ids::QueueItemId;
use crate::ports::QueueRepository;
use crate::queue::{NewQueueItem, QueueItem, QueueItemStatus, RawQueueItem};

use super::ServiceError;

/// How many times a status update is retried when a concurrent change wins the version race.
const UPDATE_ATTEMPTS: usize = 3;

/// The queue use cases.
pub struct QueueService {
    repo: Arc<dyn QueueRepository>,
    clock: Arc<dyn Clock>,
    ids: Arc<dyn IdGenerator>,
}

impl QueueService {
    /// The most items one request may add.
    pub const MAX_BATCH: usize = 1000;

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

    /// Sets an item's status (with an optional message) under the domain's transition rules,
    /// retrying when a concurrent change moved the version on.
    pub async fn set_status(
        &self,
        id: QueueItemId,
        status: QueueItemStatus,
        message: Option<String>,
    ) -> Result<QueueItem, ServiceError> {
        let message = crate::text::check_optional("message", message, NewQueueItem::MAX_MESSAGE)?;
        let mut last = None;
        for _ in 0..UPDATE_ATTEMPTS {
            let mut item = self.repo.get_item(id).await?;
            item.set_status(status, message.clone(), self.clock.now())?;
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

    /// Applies lease expiry to items whose claim lapsed: NEW again while retries remain, else
    /// ABANDONED. An item changed meanwhile (e.g. completed just in time) is left alone.
    /// Returns how many items were recovered.
    pub async fn recover_expired_leases(&self, limit: u32) -> Result<u64, ServiceError> {
        let now = self.clock.now();
        let mut recovered = 0;
        for mut item in self.repo.expired_item_leases(now, limit).await? {
            let settings = self.repo.get_queue(&item.queue_name).await?.settings;
            if item.expire_lease(settings.max_retries, now).is_err() {
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
        item.status = status;
        item
    }

    #[tokio::test]
    async fn valid_items_get_ids_and_server_time_and_are_stored_together() {
        let mut repo = MockQueueRepository::new();
        repo.expect_insert_items()
            .withf(|items| items.len() == 2 && items.iter().all(|i| i.created_date == NOW))
            .times(1)
            .returning(|_| Ok(()));
        let items = service(repo)
            .add_items(vec![raw("a"), raw("b")], true)
            .await
            .unwrap();
        assert_eq!(
            items[0].id,
            QueueItemId::from_uuid(uuid::Uuid::from_u128(1))
        );
        assert_eq!(
            items[1].id,
            QueueItemId::from_uuid(uuid::Uuid::from_u128(2))
        );
        assert_eq!(items[0].data.as_ref().unwrap().as_str(), r#"{"case":1}"#);
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
        assert_eq!(item.status, QueueItemStatus::Done);
        assert_eq!(item.end_date, Some(NOW));
        assert_eq!(item.message.as_deref(), Some("ok"));
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
        lapsed.lease_expires_at = Some(NOW - time::Duration::seconds(1));
        let mut exhausted = lapsed.clone();
        exhausted.retry_count = 3;
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
            sink.lock().unwrap().push(item.status);
            Ok(item.clone())
        });
        assert_eq!(service(repo).recover_expired_leases(100).await.unwrap(), 2);
        assert_eq!(
            *seen.lock().unwrap(),
            vec![QueueItemStatus::New, QueueItemStatus::Abandoned]
        );
    }
}
