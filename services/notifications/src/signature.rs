//! What every e-mail of this service ends with, in its two languages: that it holds no data about the
//! child, and who sent it. Shared by the referral, digest and disabled-endpoint e-mails.

pub(crate) const SIGNATURE_EN: &str = "This message holds no data about the child; the details are in the system, \
     for those entitled to them.\n-- Placement Exchange";
pub(crate) const SIGNATURE_BG: &str = "Съобщението не съдържа данни за детето; подробностите са в системата, \
     достъпни за оправомощените.\n-- Обмен за настаняване";
