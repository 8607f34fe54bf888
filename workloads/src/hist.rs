//! hdrhistogram helpers shared by the agent and the harness: every latency is
//! recorded in nanoseconds with 3 significant digits (HdrHistogram's usual
//! setting) and travels as a base64 V2 serialization.

use base64::Engine;
use hdrhistogram::serialization::{Deserializer, Serializer, V2Serializer};
use hdrhistogram::Histogram;

/// Significant decimal digits kept by every isobench histogram.
pub const SIGFIG: u8 = 3;

#[derive(Debug, thiserror::Error)]
pub enum HistError {
    #[error("histogram is not valid base64: {0}")]
    Base64(#[from] base64::DecodeError),
    #[error("histogram V2 decoding failed: {0:?}")]
    Decode(hdrhistogram::serialization::DeserializeError),
    #[error("histogram V2 encoding failed: {0:?}")]
    Encode(hdrhistogram::serialization::V2SerializeError),
}

/// A new auto-resizing histogram of nanoseconds (1 ns .. any).
pub fn new_ns() -> Histogram<u64> {
    let mut h = Histogram::new(SIGFIG).expect("3 significant digits is valid");
    h.auto(true);
    h
}

/// Encodes to base64 of the V2 (uncompressed) serialization.
pub fn encode(h: &Histogram<u64>) -> Result<String, HistError> {
    let mut buf = Vec::new();
    V2Serializer::new().serialize(h, &mut buf).map_err(HistError::Encode)?;
    Ok(base64::engine::general_purpose::STANDARD.encode(buf))
}

/// Raw V2 bytes (what the results folder stores as `histograms/*.hdr`).
pub fn to_v2_bytes(h: &Histogram<u64>) -> Result<Vec<u8>, HistError> {
    let mut buf = Vec::new();
    V2Serializer::new().serialize(h, &mut buf).map_err(HistError::Encode)?;
    Ok(buf)
}

/// Decodes what [`encode`] produced.
pub fn decode(s: &str) -> Result<Histogram<u64>, HistError> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(s.trim())?;
    from_v2_bytes(&bytes)
}

/// Decodes raw V2 bytes (a `histograms/*.hdr` file).
pub fn from_v2_bytes(bytes: &[u8]) -> Result<Histogram<u64>, HistError> {
    let mut h: Histogram<u64> = Deserializer::new().deserialize(&mut &bytes[..]).map_err(HistError::Decode)?;
    h.auto(true);
    Ok(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_keeps_counts_and_quantiles() {
        let mut h = new_ns();
        for v in 1..=10_000u64 {
            h.record(v * 10).unwrap();
        }
        let back = decode(&encode(&h).unwrap()).unwrap();
        assert_eq!(back.len(), 10_000);
        assert_eq!(back.value_at_quantile(0.5), h.value_at_quantile(0.5));
        assert_eq!(back.max(), h.max());
        assert!(decode("not base64!").is_err());
    }
}
