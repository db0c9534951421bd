//! Request body processors: URLENCODED, MULTIPART, JSON, XML. Each fills the transaction's
//! collections and reports errors the way ModSecurity does (`REQBODY_ERROR`, `…_MSG`).

pub(crate) mod json;
pub(crate) mod multipart;
pub(crate) mod urlencoded;
pub(crate) mod xml;

/// The outcome of a body processor that failed (message for `REQBODY_ERROR_MSG`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BodyError(pub String);

#[cfg(test)]
mod tests {
    use crate::state::TxData;
    use proptest::prelude::*;

    fn bytes() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..512),
            "(--XX|\r\n|\n|Content-Disposition: form-data; name=\"a\"|filename=|;|\"|'|x|<a>|</a>|&amp;|\\{|\\[|:|,)*".prop_map(String::into_bytes),
        ]
    }

    proptest! {
        #[test]
        fn processors_never_panic(body in bytes(), ct in "multipart/form-data; ?boundary ?= ?\"?(XX|-|\\\\)*\"?( |;)*") {
            let mut st = TxData::default();
            let _ = super::multipart::parse(ct.as_bytes(), &body, &mut st, 3);
            let _ = super::json::parse(&body, 4, &mut Vec::new());
            let _ = super::xml::parse(&body);
            let _ = super::urlencoded::parse(&body, b'&');
            super::urlencoded::parse_cookies(&body, &mut Vec::new());
        }
    }
}
