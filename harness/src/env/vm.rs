//! The vm environment (placeholder until the VM driver lands).

use super::{EnvError, EnvKind, Environment, Instance, Options};

pub struct Vm;

impl Vm {
    pub fn prepare(_opts: &Options) -> Result<Self, EnvError> {
        Err(EnvError::Unavailable { env: "vm", reason: "not built yet".into() })
    }
}

impl Environment for Vm {
    fn kind(&self) -> EnvKind {
        EnvKind::Vm
    }
    fn start(&mut self) -> Result<Box<dyn Instance>, EnvError> {
        unreachable!()
    }
}
