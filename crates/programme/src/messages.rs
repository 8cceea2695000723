//! User-facing errors: a stable code plus a message in each supported language.

use grantflow_domain::Lang;

/// An error or finding shown to a user: the workspace's one error model (a stable code,
/// messages in both languages, a top-level kind and details), defined in
/// `grantflow_domain::error`.
pub use grantflow_domain::error::UserFacing;

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
