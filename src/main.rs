fn main() {
    std::process::exit(jail::app::main());
}
