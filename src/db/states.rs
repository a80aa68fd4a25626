//! States and kinds stored as text: each an enum whose string form is written once, in
//! [`text_enum!`], and read back with a check.

/// A stored text that names no known state: a row written by a newer version, or by hand.
#[derive(Debug, thiserror::Error)]
#[error("unknown {what} '{value}' in the database")]
pub struct UnknownState {
    pub what: &'static str,
    pub value: String,
}

/// An enum stored as TEXT: `as_str` and `parse` in one place, `TryFrom<String>` for diesel's
/// `deserialize_as`, and `Serialize` as the same string.
macro_rules! text_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident ($what:literal) {
            $($(#[$vmeta:meta])* $variant:ident = $text:literal,)+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text,)+
                }
            }

            pub fn parse(text: &str) -> Option<$name> {
                match text {
                    $($text => Some($name::$variant),)+
                    _ => None,
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl TryFrom<String> for $name {
            type Error = $crate::db::states::UnknownState;

            fn try_from(value: String) -> Result<$name, Self::Error> {
                $name::parse(&value).ok_or($crate::db::states::UnknownState {
                    what: $what,
                    value,
                })
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
    };
}

pub(crate) use text_enum;

#[cfg(test)]
mod tests {
    use crate::db::outbox::{MailKind, OutboxStatus};
    use crate::db::responses::{ResponseEventKind, ResponseStatus};
    use crate::db::tokens::LinkRole;
    use crate::db::users::Role;

    fn round_trips<T>(all: &[T], as_str: fn(T) -> &'static str, parse: fn(&str) -> Option<T>)
    where
        T: Copy + PartialEq + std::fmt::Debug + TryFrom<String>,
    {
        let mut seen = std::collections::HashSet::new();
        for &v in all {
            let text = as_str(v);
            assert!(seen.insert(text), "{text} names two states");
            assert_eq!(parse(text), Some(v));
            assert_eq!(T::try_from(text.to_string()).ok(), Some(v));
        }
        assert_eq!(parse("no such state"), None);
    }

    #[test]
    fn every_state_reads_back_what_it_writes() {
        round_trips(OutboxStatus::ALL, OutboxStatus::as_str, OutboxStatus::parse);
        round_trips(MailKind::ALL, MailKind::as_str, MailKind::parse);
        round_trips(
            ResponseStatus::ALL,
            ResponseStatus::as_str,
            ResponseStatus::parse,
        );
        round_trips(
            ResponseEventKind::ALL,
            ResponseEventKind::as_str,
            ResponseEventKind::parse,
        );
        round_trips(Role::ALL, Role::as_str, Role::parse);
        round_trips(LinkRole::ALL, LinkRole::as_str, LinkRole::parse);
        assert_eq!(LinkRole::Coordinator.as_str(), "coordinator");
        // The strings are the ones existing databases hold.
        assert_eq!(OutboxStatus::Pending.as_str(), "pending");
        assert_eq!(ResponseStatus::Submitted.as_str(), "submitted");
        assert_eq!(
            serde_json::to_string(&MailKind::Reminder).ok().as_deref(),
            Some("\"reminder\"")
        );
        let unknown = OutboxStatus::try_from("bounced".to_string());
        assert_eq!(
            unknown.err().map(|e| e.to_string()).as_deref(),
            Some("unknown outbox status 'bounced' in the database")
        );
    }
}
