//! What differs between native and the browser, in one place: native code drives wgpu's
//! callbacks by polling and gets error scopes back at once, while the browser resolves both
//! on its own event loop and must never block; entropy comes from the OS clock or from JS;
//! getting a GPU adapter takes a different step on each platform.

/// What to do when wgpu finds no adapter.
#[cfg(target_arch = "wasm32")]
pub(crate) const ADAPTER_HINT: &str = "this browser offers WebGPU but no adapter: turn on hardware acceleration, or use a browser whose WebGPU runs on this machine";
#[cfg(all(not(target_arch = "wasm32"), target_os = "linux"))]
pub(crate) const ADAPTER_HINT: &str = "install your GPU's Vulkan driver, or a software one: on Debian or Ubuntu, apt-get install mesa-vulkan-drivers (Mesa's lavapipe)";
#[cfg(all(not(target_arch = "wasm32"), not(target_os = "linux")))]
pub(crate) const ADAPTER_HINT: &str =
    "install or update your GPU's driver (Metal on macOS; DX12 or Vulkan on Windows)";

/// Switches off Mesa's device-select Vulkan layer where there is no display session (no
/// usable `XDG_RUNTIME_DIR`): there it cannot reach a display server and prints
/// "XDG_RUNTIME_DIR is invalid" for every instance. wgpu picks the adapter itself; a person
/// who chose a device for the layer (`MESA_VK_DEVICE_SELECT`, `DRI_PRIME`) keeps it.
///
/// # Safety
/// It sets an environment variable, so it must run before any other thread exists (first
/// thing in `main`).
#[cfg(not(target_arch = "wasm32"))]
pub unsafe fn quiet_headless_vulkan() {
    let set = |name: &str| std::env::var_os(name).is_some();
    let display_session =
        std::env::var_os("XDG_RUNTIME_DIR").is_some_and(|dir| std::path::Path::new(&dir).is_dir());
    if !display_session
        && !set("NODEVICE_SELECT")
        && !set("MESA_VK_DEVICE_SELECT")
        && !set("DRI_PRIME")
    {
        // SAFETY: the caller guarantees no other thread reads the environment meanwhile.
        unsafe { std::env::set_var("NODEVICE_SELECT", "1") };
    }
}

/// Native: waits until the device has run its callbacks (a readback's map). In the browser
/// the event loop does this, and blocking is impossible.
pub(crate) fn drive_callbacks(device: &wgpu::Device) -> Result<(), wgpu::PollError> {
    #[cfg(not(target_arch = "wasm32"))]
    device.poll(wgpu::PollType::wait_indefinitely())?;
    #[cfg(target_arch = "wasm32")]
    let _ = device;
    Ok(())
}

/// Opens a validation error scope where scopes resolve synchronously (native). In the browser
/// they resolve later, so none is opened there and errors reach the device's
/// uncaptured-error handler (`Gpu::check`) with their full message.
pub(crate) fn validation_scope(device: &wgpu::Device) -> Option<wgpu::ErrorScopeGuard> {
    #[cfg(not(target_arch = "wasm32"))]
    return Some(device.push_error_scope(wgpu::ErrorFilter::Validation));
    #[cfg(target_arch = "wasm32")]
    {
        let _ = device;
        None
    }
}

/// The error a scope from [`validation_scope`] captured (ready at once where one exists).
pub(crate) fn scope_error(scope: Option<wgpu::ErrorScopeGuard>) -> Option<wgpu::Error> {
    use std::future::Future;
    use std::task::{Context, Poll, Waker};
    let mut future = std::pin::pin!(scope?.pop());
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(error) => error,
        Poll::Pending => None,
    }
}

/// A seed for sampling when the caller gives none.
pub(crate) fn entropy_seed() -> u64 {
    #[cfg(not(target_arch = "wasm32"))]
    {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        nanos ^ (std::process::id() as u64).rotate_left(32)
    }
    #[cfg(target_arch = "wasm32")]
    {
        (js_sys::Math::random() * (1u64 << 53) as f64) as u64
    }
}
