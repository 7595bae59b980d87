//! The proto enums that rows hold, stored in PostgreSQL as their proto names (`REFERRAL_STATUS_PLACED`):
//! readable in `psql`, stable when variants are added. A row whose text is not a name of the enum, or is
//! its `*_UNSPECIFIED` name, fails to decode, loudly: the database holds something this build does not
//! know (a newer release wrote it, or someone typed it), and guessing would act on a wrong state.

use sqlx::{
    Decode, Encode, Postgres, Type,
    encode::IsNull,
    error::BoxDynError,
    postgres::{PgArgumentBuffer, PgHasArrayType, PgTypeInfo, PgValueRef},
};

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

        impl Type<Postgres> for v1::$enum {
            fn type_info() -> PgTypeInfo {
                <&str as Type<Postgres>>::type_info()
            }
            fn compatible(ty: &PgTypeInfo) -> bool {
                <&str as Type<Postgres>>::compatible(ty)
            }
        }

        impl PgHasArrayType for v1::$enum {
            fn array_type_info() -> PgTypeInfo {
                <&str as PgHasArrayType>::array_type_info()
            }
            fn array_compatible(ty: &PgTypeInfo) -> bool {
                <&str as PgHasArrayType>::array_compatible(ty)
            }
        }

        impl<'q> Encode<'q, Postgres> for v1::$enum {
            fn encode_by_ref(&self, buf: &mut PgArgumentBuffer) -> Result<IsNull, BoxDynError> {
                <&str as Encode<'q, Postgres>>::encode_by_ref(&self.stored(), buf)
            }
        }

        impl<'r> Decode<'r, Postgres> for v1::$enum {
            fn decode(value: PgValueRef<'r>) -> Result<Self, BoxDynError> {
                let name = <&str as Decode<'r, Postgres>>::decode(value)?;
                Self::from_stored(name).ok_or_else(|| {
                    Box::new(UnknownStoredName { kind: stringify!($enum), value: name.to_owned() })
                        as BoxDynError
                })
            }
        }
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
);
