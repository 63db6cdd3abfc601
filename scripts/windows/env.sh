# Sourced by the Windows stage's scripts: the environment of the cross build for
# x86_64-pc-windows-gnu and of running its programs under Wine (docs/windows-macos.md).
#
# The rustup toolchain here has the Linux target only and cannot fetch another, and no
# prebuilt Windows std exists for Debian's rustc: Debian's rustc-web (1.96) builds std from
# its own sources (rust-web-src) with cargo's build-std, which RUSTC_BOOTSTRAP lets that
# stable compiler use. Its own target folder, as its rustc differs from the native build's.
win_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
export WIN_TARGET=x86_64-pc-windows-gnu
export CARGO_TARGET_DIR="$win_root/target/windows"
export WIN_EXE_DIR="$CARGO_TARGET_DIR/$WIN_TARGET/debug"
export PATH="/usr/bin:$PATH"
export CARGO=/usr/bin/cargo RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc
unset RUSTUP_TOOLCHAIN
export RUSTC_BOOTSTRAP=1
export CARGO_UNSTABLE_BUILD_STD=std,panic_unwind
export CARGO_BUILD_TARGET=$WIN_TARGET
export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_LINKER=x86_64-w64-mingw32-gcc
export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_RUNNER=wine
export CC_x86_64_pc_windows_gnu=x86_64-w64-mingw32-gcc
export CXX_x86_64_pc_windows_gnu=x86_64-w64-mingw32-g++
export AR_x86_64_pc_windows_gnu=x86_64-w64-mingw32-ar
export RC_x86_64_pc_windows_gnu=x86_64-w64-mingw32-windres
# Debug info would make this folder some 7 GB; the tests need none.
export CARGO_PROFILE_DEV_DEBUG=0
export CARGO_INCREMENTAL=0
export WINEPREFIX="$CARGO_TARGET_DIR/wineprefix"
export WINEDEBUG=-all
# No Mono or Gecko installer prompts on the prefix's first start.
export WINEDLLOVERRIDES="mscoree,mshtml="
export WINEARCH=win64
