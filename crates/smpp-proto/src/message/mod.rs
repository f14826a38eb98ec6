//! The message layer: text encodings, long messages, delivery receipts.
