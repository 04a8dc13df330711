//! Protocol decoders and log line parsers (being written).
