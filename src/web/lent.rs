//! What both async iterators of the JS API share: one generation that each `next()` takes
//! out while it runs (the wasm side cannot hold a borrow across an await), so that a
//! second `next()` in flight is refused, an abort signal checked before each step, and
//! `return()` ending it, also while a `next()` is in flight (that call then drops the
//! generation when it comes back, which gives its GPU buffers back).

use std::cell::RefCell;
use std::rc::Rc;

use wasm_bindgen::JsValue;

use super::{abort_error, js_error};

struct Slot<G> {
    generation: Option<G>,
    busy: bool,
    stopped: bool,
}

pub struct Lent<G> {
    slot: Rc<RefCell<Slot<G>>>,
    signal: Option<web_sys::AbortSignal>,
}

impl<G> Clone for Lent<G> {
    fn clone(&self) -> Self {
        Lent {
            slot: self.slot.clone(),
            signal: self.signal.clone(),
        }
    }
}

impl<G> Lent<G> {
    pub fn new(generation: G, signal: Option<web_sys::AbortSignal>) -> Self {
        Lent {
            slot: Rc::new(RefCell::new(Slot {
                generation: Some(generation),
                busy: false,
                stopped: false,
            })),
            signal,
        }
    }

    /// The generation, for one `next()`: `None` once it has ended or been stopped; an
    /// error while another `next()` is in flight or once the signal has aborted.
    pub fn take(&self) -> Result<Option<G>, JsValue> {
        let mut slot = self.slot.borrow_mut();
        if slot.busy {
            return Err(js_error("next() was called before the previous call finished").into());
        }
        let Some(generation) = slot.generation.take() else {
            return Ok(None);
        };
        if self.signal.as_ref().is_some_and(|s| s.aborted()) {
            return Err(abort_error());
        }
        slot.busy = true;
        Ok(Some(generation))
    }

    /// The end of a `next()`: the generation goes back for the next one, unless it ended
    /// (`None`) or `return()` came meanwhile.
    pub fn give_back(&self, generation: Option<G>) {
        let mut slot = self.slot.borrow_mut();
        slot.busy = false;
        if !slot.stopped {
            slot.generation = generation;
        }
    }

    /// `return()`: ends the generation now, or when the `next()` in flight comes back.
    pub fn stop(&self) {
        let mut slot = self.slot.borrow_mut();
        slot.stopped = true;
        slot.generation = None;
    }
}
