//! A Python pickle reader that executes nothing: it understands the opcodes `torch.save`
//! writes for a state dict (protocols 2 to 4) and builds values from them. A global (a
//! class or function the pickle names) is only recorded by name, never looked up; applying
//! one (`REDUCE`, `NEWOBJ`, `BUILD`) is left to the caller, which accepts the few a state dict
//! uses and refuses the rest.

use std::collections::HashMap;

/// A value of the pickle's stack.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    Tuple(Vec<Value>),
    List(Vec<Value>),
    /// Keys and values in insertion order.
    Dict(Vec<(Value, Value)>),
    /// `module.name`, as the pickle names it.
    Global(String, String),
    /// What the caller made of `callable(*args)`.
    Object(Box<Object>),
    /// A persistent id (`BINPERSID`): torch's reference to a storage.
    Persistent(Box<Value>),
}

/// An applied global, for the caller to interpret.
#[derive(Clone, Debug, PartialEq)]
pub struct Object {
    pub module: String,
    pub name: String,
    pub args: Vec<Value>,
}

impl Value {
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// The items of a tuple or a list.
    pub fn as_seq(&self) -> Option<&[Value]> {
        match self {
            Value::Tuple(items) | Value::List(items) => Some(items),
            _ => None,
        }
    }
}

enum Item {
    Value(Value),
    Mark,
}

/// Whether the caller accepts `module.name` as a callable, and what applying it gives.
pub trait Globals {
    fn apply(&self, module: &str, name: &str, args: Vec<Value>) -> Result<Value, String>;
}

struct Machine<'b, G: Globals> {
    bytes: &'b [u8],
    pos: usize,
    stack: Vec<Item>,
    memo: HashMap<u32, Value>,
    globals: &'b G,
}

/// Deepest nesting of marks and containers a state dict needs, with room to spare: bounds the
/// work a hostile file can ask for.
const MAX_STACK: usize = 1 << 20;

/// Reads the pickle in `bytes` to its `STOP`; errors name the opcode and its offset.
pub fn load(bytes: &[u8], globals: &impl Globals) -> Result<Value, String> {
    Machine {
        bytes,
        pos: 0,
        stack: Vec::new(),
        memo: HashMap::new(),
        globals,
    }
    .run()
}

impl<G: Globals> Machine<'_, G> {
    fn take(&mut self, len: usize) -> Result<&[u8], String> {
        let end = self
            .pos
            .checked_add(len)
            .filter(|&end| end <= self.bytes.len())
            .ok_or_else(|| format!("the pickle ends inside an opcode at byte {}", self.pos))?;
        let slice = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(slice)
    }

    fn u8(&mut self) -> Result<u8, String> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16, String> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32, String> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self) -> Result<u64, String> {
        let b = self.take(8)?;
        Ok(u64::from_le_bytes(b.try_into().unwrap_or_default()))
    }

    fn len(&mut self, n: u64) -> Result<usize, String> {
        usize::try_from(n).map_err(|_| format!("a length of {n} bytes at byte {}", self.pos))
    }

    fn line(&mut self) -> Result<String, String> {
        let rest = &self.bytes[self.pos..];
        let end = rest
            .iter()
            .position(|&b| b == b'\n')
            .ok_or("a GLOBAL name without its newline")?;
        let text = std::str::from_utf8(&rest[..end])
            .map_err(|_| "a GLOBAL name that is not UTF-8")?
            .to_string();
        self.pos += end + 1;
        Ok(text)
    }

    fn text(&mut self, len: usize) -> Result<String, String> {
        let bytes = self.take(len)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| "a string that is not UTF-8".to_string())
    }

    fn push(&mut self, value: Value) -> Result<(), String> {
        if self.stack.len() >= MAX_STACK {
            return Err("the pickle's stack grows beyond any state dict's".into());
        }
        self.stack.push(Item::Value(value));
        Ok(())
    }

    fn pop(&mut self) -> Result<Value, String> {
        match self.stack.pop() {
            Some(Item::Value(v)) => Ok(v),
            Some(Item::Mark) => Err("a mark where a value was expected".into()),
            None => Err("an opcode on an empty stack".into()),
        }
    }

    fn top(&mut self) -> Result<&mut Value, String> {
        match self.stack.last_mut() {
            Some(Item::Value(v)) => Ok(v),
            _ => Err("an opcode without the value it applies to".into()),
        }
    }

    /// The values above the topmost mark, which is removed.
    fn pop_mark(&mut self) -> Result<Vec<Value>, String> {
        let at = self
            .stack
            .iter()
            .rposition(|i| matches!(i, Item::Mark))
            .ok_or("an opcode that needs a mark, with none on the stack")?;
        let items = self.stack.split_off(at + 1);
        self.stack.pop();
        Ok(items
            .into_iter()
            .map(|i| match i {
                Item::Value(v) => v,
                Item::Mark => Value::None,
            })
            .collect())
    }

    fn memo_get(&self, key: u32) -> Result<Value, String> {
        self.memo
            .get(&key)
            .cloned()
            .ok_or_else(|| format!("memo entry {key} is read before it is written"))
    }

    fn memo_put(&mut self, key: u32) -> Result<(), String> {
        let value = match self.stack.last() {
            Some(Item::Value(v)) => v.clone(),
            _ => return Err("a memo write with no value on the stack".into()),
        };
        self.memo.insert(key, value);
        Ok(())
    }

    fn set_items(&mut self, pairs: Vec<Value>) -> Result<(), String> {
        if !pairs.len().is_multiple_of(2) {
            return Err("SETITEMS with an odd number of values".into());
        }
        let Value::Dict(entries) = self.top()? else {
            return Err("SETITEMS on something that is not a dict".into());
        };
        let mut pairs = pairs.into_iter();
        while let (Some(k), Some(v)) = (pairs.next(), pairs.next()) {
            match entries.iter_mut().find(|(key, _)| *key == k) {
                Some(entry) => entry.1 = v,
                None => entries.push((k, v)),
            }
        }
        Ok(())
    }

    fn apply(&mut self, callable: Value, args: Value) -> Result<Value, String> {
        let Value::Global(module, name) = callable else {
            return Err("a call of something that is not a global".into());
        };
        let Value::Tuple(args) = args else {
            return Err(format!(
                "{module}.{name} is called without an argument tuple"
            ));
        };
        self.globals.apply(&module, &name, args)
    }

    fn run(mut self) -> Result<Value, String> {
        loop {
            let at = self.pos;
            let op = self.u8()?;
            let step = self.op(op);
            match step {
                Ok(true) => return self.pop(),
                Ok(false) => {}
                Err(e) => return Err(format!("pickle opcode {op:#04x} at byte {at}: {e}")),
            }
        }
    }

    /// Runs one opcode; `true` at `STOP`.
    fn op(&mut self, op: u8) -> Result<bool, String> {
        match op {
            b'.' => return Ok(true),
            0x80 => {
                let protocol = self.u8()?;
                if protocol > 5 {
                    return Err(format!("pickle protocol {protocol}"));
                }
            }
            0x95 => {
                self.u64()?;
            }
            b'(' => self.stack.push(Item::Mark),
            b'}' => self.push(Value::Dict(Vec::new()))?,
            b']' => self.push(Value::List(Vec::new()))?,
            b')' => self.push(Value::Tuple(Vec::new()))?,
            b'N' => self.push(Value::None)?,
            0x88 => self.push(Value::Bool(true))?,
            0x89 => self.push(Value::Bool(false))?,
            b'K' => {
                let v = self.u8()?;
                self.push(Value::Int(v.into()))?
            }
            b'M' => {
                let v = self.u16()?;
                self.push(Value::Int(v.into()))?
            }
            b'J' => {
                let v = self.u32()? as i32;
                self.push(Value::Int(v.into()))?
            }
            0x8a => {
                let n = self.u8()? as usize;
                let bytes = self.take(n)?;
                if n > 8 {
                    return Err(format!("an integer of {n} bytes"));
                }
                let mut word = [if bytes.last().is_some_and(|b| b & 0x80 != 0) {
                    0xff
                } else {
                    0
                }; 8];
                word[..n].copy_from_slice(bytes);
                self.push(Value::Int(i64::from_le_bytes(word)))?
            }
            b'G' => {
                let b = self.take(8)?;
                let v = f64::from_be_bytes(b.try_into().unwrap_or_default());
                self.push(Value::Float(v))?
            }
            b'X' => {
                let n = self.u32()?.into();
                let n = self.len(n)?;
                let s = self.text(n)?;
                self.push(Value::Str(s))?
            }
            0x8c => {
                let n = self.u8()? as usize;
                let s = self.text(n)?;
                self.push(Value::Str(s))?
            }
            0x8d => {
                let n = self.u64()?;
                let n = self.len(n)?;
                let s = self.text(n)?;
                self.push(Value::Str(s))?
            }
            b'C' => {
                let n = self.u8()? as usize;
                let b = self.take(n)?.to_vec();
                self.push(Value::Bytes(b))?
            }
            b'B' => {
                let n = self.u32()?.into();
                let n = self.len(n)?;
                let b = self.take(n)?.to_vec();
                self.push(Value::Bytes(b))?
            }
            b'c' => {
                let module = self.line()?;
                let name = self.line()?;
                self.push(Value::Global(module, name))?
            }
            0x93 => {
                let name = self.pop()?;
                let module = self.pop()?;
                match (module, name) {
                    (Value::Str(m), Value::Str(n)) => self.push(Value::Global(m, n))?,
                    _ => return Err("STACK_GLOBAL without two names".into()),
                }
            }
            b'q' => {
                let key = self.u8()?.into();
                self.memo_put(key)?
            }
            b'r' => {
                let key = self.u32()?;
                self.memo_put(key)?
            }
            0x94 => {
                let key = self.memo.len() as u32;
                self.memo_put(key)?
            }
            b'h' => {
                let key = self.u8()?.into();
                let v = self.memo_get(key)?;
                self.push(v)?
            }
            b'j' => {
                let key = self.u32()?;
                let v = self.memo_get(key)?;
                self.push(v)?
            }
            b't' => {
                let items = self.pop_mark()?;
                self.push(Value::Tuple(items))?
            }
            0x85..=0x87 => {
                let n = (op - 0x84) as usize;
                let mut items = (0..n).map(|_| self.pop()).collect::<Result<Vec<_>, _>>()?;
                items.reverse();
                self.push(Value::Tuple(items))?
            }
            b'a' => {
                let v = self.pop()?;
                match self.top()? {
                    Value::List(items) => items.push(v),
                    _ => return Err("APPEND to something that is not a list".into()),
                }
            }
            b'e' => {
                let values = self.pop_mark()?;
                match self.top()? {
                    Value::List(items) => items.extend(values),
                    _ => return Err("APPENDS to something that is not a list".into()),
                }
            }
            b's' => {
                let v = self.pop()?;
                let k = self.pop()?;
                self.set_items(vec![k, v])?
            }
            b'u' => {
                let pairs = self.pop_mark()?;
                self.set_items(pairs)?
            }
            b'R' | 0x81 => {
                let args = self.pop()?;
                let callable = self.pop()?;
                let v = self.apply(callable, args)?;
                self.push(v)?
            }
            b'b' => {
                // State set on an object (a state dict's `_metadata`): nothing a tensor needs.
                self.pop()?;
                self.top()?;
            }
            b'Q' => {
                let id = self.pop()?;
                self.push(Value::Persistent(Box::new(id)))?
            }
            other => return Err(format!("unsupported opcode {other:#04x}")),
        }
        Ok(false)
    }
}
