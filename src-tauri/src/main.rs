// No console window on Windows release builds.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    postback_desk_lib::rendering::prefer_non_composited_drawing();
    postback::tune_allocator();
    postback::prefer_small_pages();
    postback_desk_lib::run();
}
