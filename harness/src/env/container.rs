//! The container environment (placeholder until the launcher lands).

use super::{EnvError, EnvKind, Environment, Instance, Options};

pub struct Container;

impl Container {
    pub fn prepare(_opts: &Options) -> Result<Self, EnvError> {
        Err(EnvError::Unavailable { env: "container", reason: "not built yet".into() })
    }
}

impl Environment for Container {
    fn kind(&self) -> EnvKind {
        EnvKind::Container
    }
    fn start(&mut self) -> Result<Box<dyn Instance>, EnvError> {
        unreachable!()
    }
}
