pub mod bench;
pub mod render;
pub mod sim_cmd;
pub mod size;
