//! Recycles storage buffers between generations, because creating (and first binding) a
//! buffer costs far more than reusing one. Sizes are rounded up to a quarter-octave class
//! (at most 25% waste) so that inputs of nearby lengths share buffers.

use std::collections::HashMap;
use std::sync::Mutex;

use super::sync::lock;
use crate::error::{Error, Result};

pub struct BufferPool {
    device: wgpu::Device,
    /// The largest buffer the device allows (and may bind whole).
    max_bytes: u64,
    free: Mutex<HashMap<u64, Vec<wgpu::Buffer>>>,
    allocated: Mutex<u64>,
}

impl BufferPool {
    pub fn new(device: wgpu::Device, max_bytes: u64) -> Self {
        BufferPool {
            device,
            max_bytes,
            free: Mutex::default(),
            allocated: Mutex::default(),
        }
    }

    fn size_class(bytes: u64) -> u64 {
        let bytes = bytes.max(256);
        let octave = 1u64 << (63 - bytes.leading_zeros());
        let quarter = (octave / 4).max(1);
        bytes.next_multiple_of(quarter)
    }

    pub fn take(&self, bytes: u64) -> Result<wgpu::Buffer> {
        let class = Self::size_class(bytes);
        if let Some(buffer) = lock(&self.free).get_mut(&class).and_then(Vec::pop) {
            return Ok(buffer);
        }
        self.check_size("a work buffer", class)?;
        *lock(&self.allocated) += class;
        Ok(self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("pooled"),
            size: class,
            usage: wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_DST
                | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        }))
    }

    /// Errors unless a buffer of `bytes` fits the device (and can be bound whole).
    /// The largest buffer the device allows.
    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    pub fn check_size(&self, what: &str, bytes: u64) -> Result<()> {
        if bytes > self.max_bytes {
            return Err(Error::AdapterLimit {
                limit: "maxStorageBufferBindingSize",
                allowed: self.max_bytes,
                what: what.to_string(),
                needed: bytes,
            });
        }
        Ok(())
    }

    pub fn give_back(&self, buffer: wgpu::Buffer) {
        lock(&self.free)
            .entry(buffer.size())
            .or_default()
            .push(buffer);
    }

    /// Bytes of every buffer the pool ever created (in use or free).
    pub fn allocated_bytes(&self) -> u64 {
        *lock(&self.allocated)
    }
}
