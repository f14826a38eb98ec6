//! The declarative field lists every PDU body is generated from.

use bytes::BufMut;

use super::codec::{FieldResult, Reader};
use super::{EncodeError, Tlvs};

/// Decoding, validating and writing one body layout.
pub(crate) trait BodyCodec: Sized + Default + PartialEq {
    fn decode(r: &mut Reader<'_>) -> FieldResult<Self>;
    /// Encoded length of the body, after checking every field against its rules.
    fn checked_len(&self) -> Result<usize, EncodeError>;
    /// Writes the body; call only after `checked_len` succeeded.
    fn write<B: BufMut>(&self, out: &mut B);
    /// Visits every field in wire order.
    fn visit<'a>(&'a self, f: &mut dyn FnMut(super::Field<'a>));
    /// Checks and writes in one pass (the caller truncates `out` on error).
    fn write_checked(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        self.checked_len()?;
        self.write(out);
        Ok(())
    }
    /// Whether every field has its default value.
    fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

/// The larger bodies sit in a [`Body`](super::Body) boxed, so that a
/// [`Pdu`](super::Pdu) stays small and cheap to move.
impl<T: BodyCodec> BodyCodec for Box<T> {
    #[inline(always)]
    fn decode(r: &mut Reader<'_>) -> FieldResult<Self> {
        T::decode(r).map(Box::new)
    }
    fn visit<'a>(&'a self, f: &mut dyn FnMut(super::Field<'a>)) {
        (**self).visit(f);
    }
    #[inline]
    fn checked_len(&self) -> Result<usize, EncodeError> {
        (**self).checked_len()
    }
    #[inline]
    fn write<B: BufMut>(&self, out: &mut B) {
        (**self).write(out);
    }
    #[inline]
    fn write_checked(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        (**self).write_checked(out)
    }
    // Without building a default box to compare with.
    fn is_default(&self) -> bool {
        (**self).is_default()
    }
}

impl BodyCodec for Tlvs {
    fn decode(r: &mut Reader<'_>) -> FieldResult<Self> {
        r.tlvs()
    }
    fn visit<'a>(&'a self, f: &mut dyn FnMut(super::Field<'a>)) {
        f(super::Field {
            name: "tlvs",
            value: super::FieldValue::Tlvs(self),
        });
    }
    fn checked_len(&self) -> Result<usize, EncodeError> {
        Ok(self.wire_len())
    }
    fn write<B: BufMut>(&self, out: &mut B) {
        out.put_slice(self.as_bytes());
    }
}

/// Generates a body struct and its [`BodyCodec`] from the field list in wire order.
///
/// Field kinds: `u8`; `cstr(MAX, STATUS)` a C-Octet String of at most MAX
/// octets with its NUL, whose problems are answered with `CommandStatus::STATUS`;
/// `time(STATUS)` a C(1|17) time; `sm` sm_length + short_message; `tlvs` the TLV section.
/// `manual_default;` before the struct leaves `Default` to a hand-written impl.
macro_rules! pdu_body {
    (
        manual_default;
        $(#[$sdoc:meta])*
        pub struct $name:ident { $($body:tt)* }
    ) => {
        pdu_body!(@struct [] $(#[$sdoc])* pub struct $name { $($body)* });
    };
    (
        $(#[$sdoc:meta])*
        pub struct $name:ident { $($body:tt)* }
    ) => {
        pdu_body!(@struct [Default] $(#[$sdoc])* pub struct $name { $($body)* });
    };
    (
        @struct [$($derive:ident)?]
        $(#[$sdoc:meta])*
        pub struct $name:ident {
            $( $(#[$fdoc:meta])* $field:ident : $kind:ident $( ( $($arg:tt)* ) )? ),* $(,)?
        }
    ) => {
        $(#[$sdoc])*
        #[derive(Clone, Debug, $($derive,)? PartialEq, Eq, Hash)]
        #[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
        pub struct $name {
            $(
                $(#[$fdoc])*
                #[cfg_attr(feature = "arbitrary", arbitrary(with = $crate::pdu::arb::$kind))]
                pub $field: pdu_body!(@ty $kind),
            )*
        }

        impl $crate::pdu::body::BodyCodec for $name {
            #[inline(always)]
            fn decode(r: &mut $crate::pdu::codec::Reader<'_>) -> $crate::pdu::codec::FieldResult<Self> {
                Ok($name { $( $field: pdu_body!(@dec r, $field, $kind $(, $($arg)*)?), )* })
            }

            #[inline]
            fn checked_len(&self) -> Result<usize, $crate::pdu::EncodeError> {
                Ok(0 $( + pdu_body!(@len self.$field, $field, $kind $(, $($arg)*)?) )*)
            }

            #[inline]
            fn write<B: bytes::BufMut>(&self, out: &mut B) {
                $( pdu_body!(@put out, self.$field, $kind); )*
            }

            fn visit<'a>(&'a self, f: &mut dyn FnMut($crate::pdu::Field<'a>)) {
                $( pdu_body!(@visit f, self.$field, $field, $kind); )*
            }

            #[inline]
            fn write_checked(&self, out: &mut Vec<u8>) -> Result<(), $crate::pdu::EncodeError> {
                $(
                    pdu_body!(@len self.$field, $field, $kind $(, $($arg)*)?);
                    pdu_body!(@putv out, self.$field, $kind);
                )*
                Ok(())
            }
        }
    };

    (@ty u8) => { u8 };
    (@ty cstr) => { $crate::pdu::COctetString };
    (@ty time) => { $crate::pdu::COctetString };
    (@ty sm) => { bytes::Bytes };
    (@ty tlvs) => { $crate::pdu::Tlvs };

    (@dec $r:ident, $f:ident, u8) => { $r.u8(stringify!($f))? };
    (@dec $r:ident, $f:ident, cstr, $max:expr, $st:ident) => {
        $r.cstr($max, stringify!($f), $crate::pdu::CommandStatus::$st)?
    };
    (@dec $r:ident, $f:ident, time, $st:ident) => { $r.time(stringify!($f), $crate::pdu::CommandStatus::$st)? };
    (@dec $r:ident, $f:ident, sm) => { $r.sm()? };
    (@dec $r:ident, $f:ident, tlvs) => { $r.tlvs()? };

    (@len $v:expr, $f:ident, u8) => { 1 };
    (@len $v:expr, $f:ident, cstr, $max:expr, $st:ident) => { $crate::pdu::codec::check_cstr(&$v, $max, stringify!($f))? };
    (@len $v:expr, $f:ident, time, $st:ident) => { $crate::pdu::codec::check_time(&$v, stringify!($f))? };
    (@len $v:expr, $f:ident, sm) => { $crate::pdu::codec::check_sm(&$v)? };
    (@len $v:expr, $f:ident, tlvs) => { $v.wire_len() };

    (@visit $f:ident, $v:expr, $name:ident, u8) => { $f($crate::pdu::Field::int(stringify!($name), $v)) };
    (@visit $f:ident, $v:expr, $name:ident, cstr) => { $f($crate::pdu::Field::text(stringify!($name), &$v)) };
    (@visit $f:ident, $v:expr, $name:ident, time) => { $f($crate::pdu::Field::time(stringify!($name), &$v)) };
    (@visit $f:ident, $v:expr, $name:ident, sm) => {{
        $f($crate::pdu::Field::int("sm_length", $v.len() as u32));
        $f($crate::pdu::Field::octets("short_message", &$v));
    }};
    (@visit $f:ident, $v:expr, $name:ident, tlvs) => { $f($crate::pdu::Field::tlvs(&$v)) };
    (@putv $o:ident, $v:expr, cstr) => { $v.append_with_nul($o) };
    (@putv $o:ident, $v:expr, time) => { $v.append_with_nul($o) };
    (@putv $o:ident, $v:expr, $kind:ident) => { pdu_body!(@put $o, $v, $kind) };
    (@put $o:ident, $v:expr, u8) => { bytes::BufMut::put_u8($o, $v) };
    (@put $o:ident, $v:expr, cstr) => { $crate::pdu::codec::put_cstr($o, &$v) };
    (@put $o:ident, $v:expr, time) => { $crate::pdu::codec::put_cstr($o, &$v) };
    (@put $o:ident, $v:expr, sm) => { $crate::pdu::codec::put_sm($o, &$v) };
    (@put $o:ident, $v:expr, tlvs) => { bytes::BufMut::put_slice($o, $v.as_bytes()) };
}

pub(crate) use pdu_body;
