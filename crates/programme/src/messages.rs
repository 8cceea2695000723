//! User-facing errors: a stable code plus a message in each supported language.

use grantflow_domain::{I18nText, Lang};

/// An error or finding shown to a user. The code is stable (clients switch on it and
/// translations are keyed by it); the messages are for people.
pub trait UserFacing {
    /// A stable upper-snake-case identifier such as `BUDGET_LINE_MISSING`.
    fn code(&self) -> &'static str;

    /// The message in the given language.
    fn message(&self, lang: Lang) -> String;

    /// Both messages, ready to store or send to a client.
    fn i18n(&self) -> I18nText {
        I18nText::new(self.message(Lang::ZhCn), self.message(Lang::En))
    }
}

/// Implements `Display` (English, prefixed by the code, for logs) and `std::error::Error`
/// for a type that implements [`UserFacing`].
macro_rules! impl_error_via_user_facing {
    ($ty:ty) => {
        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(
                    f,
                    "{}: {}",
                    $crate::UserFacing::code(self),
                    $crate::UserFacing::message(self, grantflow_domain::Lang::En)
                )
            }
        }
        impl std::error::Error for $ty {}
    };
}
pub(crate) use impl_error_via_user_facing;

/// Picks the message for `lang` from a Chinese and an English rendering.
pub(crate) fn pick(lang: Lang, zh: String, en: String) -> String {
    match lang {
        Lang::ZhCn => zh,
        Lang::En => en,
    }
}
