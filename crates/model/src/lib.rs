//! Contiv object model: the REST objects exactly as Contiv's API spells them, keys, and schema validation (no I/O)
