//! The `tidemark` command-line interface.

fn main() {
    println!("tidemark");
}
