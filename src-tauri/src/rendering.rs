//! How the web view draws. WebKitGTK composites pages with OpenGL by default; where that GL is
//! software (virtual machines, remote desktops, Xvfb, weak drivers) every small repaint of a
//! live page redraws the whole window on the CPU. Measured with `scripts/measure-window.mjs`,
//! demo at 10 events/s: the web view's process used 52 % of a core on Integrations, 61 % on the
//! Delivery log and 42 % on Sandbox with compositing, 6–14 % without. This window is forms,
//! text and one 2-D chart, which draw well without it, so compositing is off unless the user
//! asks for it (`POSTBACK_GPU_COMPOSITING=1`) or has set WebKit's own switch.

/// Call first in `main`, before any thread starts: it may set an environment variable.
pub fn prefer_non_composited_drawing() {
    #[cfg(target_os = "linux")]
    if std::env::var_os("WEBKIT_DISABLE_COMPOSITING_MODE").is_none()
        && std::env::var_os("POSTBACK_GPU_COMPOSITING").is_none_or(|v| v == "0")
    {
        // SAFETY: main calls this before it starts any thread, so nothing reads the environment
        // concurrently; the web view's process inherits the variable when WebKit starts it.
        unsafe { std::env::set_var("WEBKIT_DISABLE_COMPOSITING_MODE", "1") }
    }
}
