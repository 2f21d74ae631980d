//! State store trait (etcd-like: revisions, transactions with compares, watch) and its embedded SQLite backend
