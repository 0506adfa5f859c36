//! A runwasi containerd shim, `containerd-shim-wasmtime-v1`, for the Kubernetes node test.
//!
//! containerd starts it for pods of the `wasmtime` runtime handler. runwasi's library sets up the
//! container (namespaces, the image's rootfs, stdout and stderr on the CRI's log pipes) and calls
//! [`Sandbox::run_wasi`] inside it; this file only runs the Wasm with wasmtime: a preview 1 module
//! through `wasi_snapshot_preview1`, a preview 2 component through `wasi:cli/run`.
//!
//! The module is the container's entrypoint: the file named by the process's first argument (the
//! image form's `Entrypoint`, or a pod's `command:`), or the Wasm layers of an artifact that
//! carries its module as `application/wasm`.

use anyhow::{Result, bail};
use containerd_shim_wasm::sandbox::Sandbox;
use containerd_shim_wasm::sandbox::context::{RuntimeContext, WasmBinaryType};
use containerd_shim_wasm::shim::{Cli, Config, Shim, Version, version};
use wasmtime::component::{Component, Linker as ComponentLinker, ResourceTable};
use wasmtime::{Engine, Linker, Module, Store};
use wasmtime_wasi::p1::{self, WasiP1Ctx};
use wasmtime_wasi::p2::bindings::Command;
use wasmtime_wasi::{FsPerms, I32Exit, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

struct WasmtimeShim;

#[derive(Default)]
struct WasmtimeSandbox;

impl Shim for WasmtimeShim {
    type Sandbox = WasmtimeSandbox;

    fn name() -> &'static str {
        "wasmtime"
    }

    fn version() -> Version {
        version!()
    }
}

impl Sandbox for WasmtimeSandbox {
    async fn run_wasi(&self, ctx: &impl RuntimeContext) -> Result<i32> {
        let entrypoint = ctx.entrypoint();
        let bytes = entrypoint.source.as_bytes()?;
        let wasi = wasi_context(ctx)?;
        let engine = Engine::default();
        let outcome = match WasmBinaryType::from_bytes(&bytes) {
            Some(WasmBinaryType::Module) => {
                run_module(&engine, &bytes, &entrypoint.func, wasi).await
            }
            Some(WasmBinaryType::Component) => run_component(&engine, &bytes, wasi).await,
            None => bail!("the entrypoint is neither a Wasm module nor a component"),
        };
        exit_code(outcome)
    }
}

/// The container's arguments, environment and root directory, and stdio inherited: runwasi has
/// already put the CRI's log pipes on this process's stdout and stderr.
fn wasi_context(ctx: &impl RuntimeContext) -> Result<WasiCtxBuilder> {
    let mut wasi = WasiCtxBuilder::new();
    wasi.inherit_stdio().args(ctx.args());
    for pair in ctx.envs() {
        if let Some((key, value)) = pair.split_once('=') {
            wasi.env(key, value);
        }
    }
    wasi.preopened_dir("/", "/", FsPerms::ReadWrite)?;
    Ok(wasi)
}

async fn run_module(
    engine: &Engine,
    bytes: &[u8],
    func: &str,
    mut wasi: WasiCtxBuilder,
) -> wasmtime::Result<()> {
    let module = Module::new(engine, bytes)?;
    let mut linker: Linker<WasiP1Ctx> = Linker::new(engine);
    p1::add_to_linker_async(&mut linker, |ctx| ctx)?;
    let mut store = Store::new(engine, wasi.build_p1());
    let instance = linker.instantiate_async(&mut store, &module).await?;
    let start = instance.get_typed_func::<(), ()>(&mut store, func)?;
    start.call_async(&mut store, ()).await
}

/// A component's state: its WASI context and the resource table the host functions use.
struct ComponentState {
    ctx: WasiCtx,
    table: ResourceTable,
}

impl WasiView for ComponentState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.ctx,
            table: &mut self.table,
        }
    }
}

async fn run_component(
    engine: &Engine,
    bytes: &[u8],
    mut wasi: WasiCtxBuilder,
) -> wasmtime::Result<()> {
    let component = Component::new(engine, bytes)?;
    let mut linker: ComponentLinker<ComponentState> = ComponentLinker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    let state = ComponentState {
        ctx: wasi.build(),
        table: ResourceTable::new(),
    };
    let mut store = Store::new(engine, state);
    let command = Command::instantiate_async(&mut store, &component, &linker).await?;
    match command.wasi_cli_run().call_run(&mut store).await? {
        Ok(()) => Ok(()),
        Err(()) => wasmtime::bail!("the component's run returned an error"),
    }
}

/// The process's exit code: 0 when the module returned, its `proc_exit` code when it called it.
fn exit_code(outcome: wasmtime::Result<()>) -> Result<i32> {
    match outcome {
        Ok(()) => Ok(0),
        Err(error) => match error.downcast_ref::<I32Exit>() {
            Some(exit) => Ok(exit.0),
            None => Err(error.into()),
        },
    }
}

fn main() {
    WasmtimeShim::run(Config::default());
}
