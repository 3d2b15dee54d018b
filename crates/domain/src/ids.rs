//! Typed identifiers, so a job id can never be passed where a workflow id is expected.

use std::fmt;
use std::str::FromStr;

use uuid::Uuid;

macro_rules! uuid_id {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Uuid);

        impl $name {
            pub const fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }

            pub const fn as_uuid(&self) -> &Uuid {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }

        impl From<Uuid> for $name {
            fn from(uuid: Uuid) -> Self {
                Self(uuid)
            }
        }
    };
}

uuid_id!(
    /// Identifies one queue item.
    QueueItemId
);
uuid_id!(
    /// Identifies one workflow (all its versions).
    WorkflowId
);
uuid_id!(
    /// Identifies one node of one workflow, as the ActiveWorkflow API shows it.
    AgentId
);
uuid_id!(
    /// Identifies one message emitted by an agent.
    MessageId
);
uuid_id!(
    /// Identifies one execution of a workflow.
    JobId
);
uuid_id!(
    /// Identifies one trigger; a schedule's id is its trigger's id.
    TriggerId
);
uuid_id!(
    /// Identifies one activity record.
    EventId
);
uuid_id!(
    /// Identifies one API key (not the key itself).
    ApiKeyId
);
