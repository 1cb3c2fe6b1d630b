"""The real-kernel lane: build the kernels the model names from Debian's source packages,
boot them in QEMU (no network device), run the kernel's own HMM selftests and guest programs,
and read results and kernel findings back from the serial console. See kernels/API.md."""
