//! Thin binary: Contiv's CNI plugin (`contivk8s`), a client of the host agent's unix socket.
fn main() -> std::process::ExitCode {
    contiv_cni::cli_main()
}
