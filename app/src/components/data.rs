//! The data a page loads through a server function, as a resource.
//!
//! Leptos's default resource codec reads the server's rendered value with `serde_json::from_str`,
//! while the server function's own answer is read with `serde_json::from_slice`. The two are two
//! copies of every page type's JSON reader in the WASM (serde's code is generic over the input).
//! [`SliceJson`] reads the resource's value through `from_slice` as well, so each type is read by
//! one copy of that code.

use leptos::prelude::*;
use leptos::server::codee::{Decoder, Encoder};
use serde::{de::DeserializeOwned, Serialize};
use std::future::Future;

/// JSON, read as bytes: the same reader the server functions' answers use.
pub struct SliceJson;

impl<T: Serialize> Encoder<T> for SliceJson {
    type Error = serde_json::Error;
    type Encoded = String;

    fn encode(value: &T) -> Result<String, serde_json::Error> {
        serde_json::to_string(value)
    }
}

impl<T: DeserializeOwned> Decoder<T> for SliceJson {
    type Error = serde_json::Error;
    type Encoded = str;

    fn decode(json: &str) -> Result<T, serde_json::Error> {
        serde_json::from_slice(json.as_bytes())
    }
}

/// A page's data: rendered on the server, carried to the browser in the HTML, and loaded again
/// whenever `source` changes. Like `Resource::new`, with the [`SliceJson`] codec.
#[track_caller]
pub fn page_data<T, S, Fut>(
    source: impl Fn() -> S + Send + Sync + 'static,
    fetcher: impl Fn(S) -> Fut + Send + Sync + 'static,
) -> Resource<T, SliceJson>
where
    T: Serialize + DeserializeOwned + Send + Sync + 'static,
    S: PartialEq + Clone + Send + Sync + 'static,
    Fut: Future<Output = T> + Send + 'static,
{
    Resource::new_with_options(source, fetcher, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_encoded_decodes_to_the_same_value() {
        let value: Result<Vec<(String, i64)>, String> = Ok(vec![("é \"q\"".into(), -3)]);
        let json = <SliceJson as Encoder<_>>::encode(&value).unwrap();
        let back: Result<Vec<(String, i64)>, String> =
            <SliceJson as Decoder<_>>::decode(&json).unwrap();
        assert_eq!(back, value);
        assert!(<SliceJson as Decoder<Vec<i64>>>::decode("{").is_err());
    }
}
