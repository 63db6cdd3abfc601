pub mod bench;
pub mod render;
pub mod replica;
pub mod sim_cmd;
pub mod size;
