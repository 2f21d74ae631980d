//! Serialized list bodies per object kind. Lists are the hot read path (clients poll them), and
//! links make every list depend on other kinds, so the whole cache is dropped on every write.

use std::collections::HashMap;

use bytes::Bytes;
use contiv_model::ObjectKind;
use parking_lot::Mutex;

#[derive(Default)]
pub struct ListCache {
    bodies: Mutex<HashMap<ObjectKind, Bytes>>,
}

impl ListCache {
    pub fn get(&self, kind: ObjectKind) -> Option<Bytes> {
        self.bodies.lock().get(&kind).cloned()
    }
    pub fn put(&self, kind: ObjectKind, body: Bytes) {
        self.bodies.lock().insert(kind, body);
    }
    pub fn clear(&self) {
        self.bodies.lock().clear();
    }
}
