/* Wine 8 has no bcryptprimitives.dll, whose ProcessPrng every program built with Rust's std
 * >= 1.78 imports: without it each .exe exits at once (status 53). This stand-in, copied
 * into the test prefix only, answers from BCryptGenRandom, which Wine has. The programs
 * under test are unchanged; real Windows has the real DLL. */
#include <windows.h>
#include <bcrypt.h>

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
    while (len > 0) {
        ULONG n = len > 0x40000000 ? 0x40000000 : (ULONG)len;
        if (BCryptGenRandom(NULL, data, n, BCRYPT_USE_SYSTEM_PREFERRED_RNG) != 0)
            return FALSE;
        data += n;
        len -= n;
    }
    return TRUE;
}
