//! The proto enums that rows hold, stored in PostgreSQL as their proto names (`REFERRAL_STATUS_PLACED`):
//! readable in `psql`, stable when variants are added. A row whose text is not a name of the enum, or is
//! its `*_UNSPECIFIED` name, fails to decode, loudly: the database holds something this build does not
//! know (a newer release wrote it, or someone typed it), and guessing would act on a wrong state.

use crate::v1;

/// A proto enum as the database stores it.
pub trait StoredName: Sized + Copy {
    /// The proto name, as stored.
    fn stored(self) -> &'static str;
    /// The variant stored as `name`; `None` for an unknown name or the unspecified one.
    fn from_stored(name: &str) -> Option<Self>;
}

#[derive(Debug, thiserror::Error)]
#[error("the database holds {value:?}, which is not a {kind} this release knows")]
pub struct UnknownStoredName {
    pub kind: &'static str,
    pub value: String,
}

/// Whatever the stored `name` is of `T`, or the error that says the database holds a name this release
/// does not know (the platform answers it DATA_LOSS).
pub fn read_stored<T: StoredName>(kind: &'static str, name: &str) -> Result<T, UnknownStoredName> {
    T::from_stored(name).ok_or_else(|| UnknownStoredName {
        kind,
        value: name.to_owned(),
    })
}

#[doc(hidden)]
pub use sqlx as __sqlx;

/// Stores a [`StoredName`] type as its name: for an enum of another crate whose stored names are its
/// own (not proto names), so that it is read, and refused when unknown, as the proto enums are.
/// `stored_as_text!(Channel, "Channel")` in the crate that defines `Channel`.
#[macro_export]
macro_rules! stored_as_text {
    ($ty:ty, $kind:expr) => {
        impl $crate::stored::__sqlx::Type<$crate::stored::__sqlx::Postgres> for $ty {
            fn type_info() -> $crate::stored::__sqlx::postgres::PgTypeInfo {
                <&str as $crate::stored::__sqlx::Type<$crate::stored::__sqlx::Postgres>>::type_info()
            }
            fn compatible(ty: &$crate::stored::__sqlx::postgres::PgTypeInfo) -> bool {
                <&str as $crate::stored::__sqlx::Type<$crate::stored::__sqlx::Postgres>>::compatible(ty)
            }
        }

        impl $crate::stored::__sqlx::postgres::PgHasArrayType for $ty {
            fn array_type_info() -> $crate::stored::__sqlx::postgres::PgTypeInfo {
                <&str as $crate::stored::__sqlx::postgres::PgHasArrayType>::array_type_info()
            }
            fn array_compatible(ty: &$crate::stored::__sqlx::postgres::PgTypeInfo) -> bool {
                <&str as $crate::stored::__sqlx::postgres::PgHasArrayType>::array_compatible(ty)
            }
        }

        impl<'q> $crate::stored::__sqlx::Encode<'q, $crate::stored::__sqlx::Postgres> for $ty {
            fn encode_by_ref(
                &self,
                buf: &mut $crate::stored::__sqlx::postgres::PgArgumentBuffer,
            ) -> Result<$crate::stored::__sqlx::encode::IsNull, $crate::stored::__sqlx::error::BoxDynError>
            {
                let name = $crate::stored::StoredName::stored(*self);
                <&str as $crate::stored::__sqlx::Encode<'q, $crate::stored::__sqlx::Postgres>>::encode_by_ref(
                    &name, buf,
                )
            }
        }

        impl<'r> $crate::stored::__sqlx::Decode<'r, $crate::stored::__sqlx::Postgres> for $ty {
            fn decode(
                value: $crate::stored::__sqlx::postgres::PgValueRef<'r>,
            ) -> Result<Self, $crate::stored::__sqlx::error::BoxDynError> {
                let name =
                    <&str as $crate::stored::__sqlx::Decode<'r, $crate::stored::__sqlx::Postgres>>::decode(value)?;
                $crate::stored::read_stored::<$ty>($kind, name)
                    .map_err(|e| Box::new(e) as $crate::stored::__sqlx::error::BoxDynError)
            }
        }
    };
}

macro_rules! stored_by_name {
    ($($enum:ident),* $(,)?) => {$(
        impl StoredName for v1::$enum {
            fn stored(self) -> &'static str {
                self.as_str_name()
            }
            fn from_stored(name: &str) -> Option<Self> {
                Self::from_str_name(name).filter(|v| *v as i32 != 0)
            }
        }

        stored_as_text!(v1::$enum, stringify!($enum));
    )*};
}

stored_by_name!(
    AgencyKind,
    ServiceType,
    ServiceStatus,
    ReferralStatus,
    LegalBasisKind,
    DeclineReason,
    WithdrawReason,
    ReferralAction,
    CaseStatus,
    CaseCloseReason,
    Sex,
    ChildNeed,
    NotificationChannel,
    NotificationKind,
    Language,
    DeliveryStatus,
    Urgency,
    WaitingReason,
    ReferralStepName,
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_or_unspecified_name_is_refused_naming_the_value() {
        let known: v1::Language = read_stored("Language", "LANGUAGE_EN").expect("a known name");
        assert_eq!(known, v1::Language::En);
        for name in ["LANGUAGE_XX", "LANGUAGE_UNSPECIFIED", "en", ""] {
            let err = read_stored::<v1::Language>("Language", name).expect_err(name);
            assert_eq!(err.value, name);
            assert_eq!(err.kind, "Language");
        }
    }
}
