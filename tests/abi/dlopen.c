/*
 * Loads the library with dlopen() (as plugins and language bindings do) and
 * makes calls through it. The library keeps one word of initial-exec TLS,
 * which glibc must find room for in its static TLS surplus at dlopen time.
 * Run under the privcmd test double.
 */
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>

int main(int argc, char **argv)
{
    if (argc != 2)
        return 2;
    void *lib = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        fprintf(stderr, "dlopen: %s\n", dlerror());
        return 1;
    }
    void *(*open_)(void *, unsigned) = (void *(*)(void *, unsigned))dlsym(lib, "xendevicemodel_open");
    int (*isa)(void *, uint16_t, uint8_t, unsigned) =
        (int (*)(void *, uint16_t, uint8_t, unsigned))dlsym(lib, "xendevicemodel_set_isa_irq_level");
    int (*close_)(void *) = (int (*)(void *))dlsym(lib, "xendevicemodel_close");
    if (!open_ || !isa || !close_)
        return 1;
    void *h = open_(NULL, 0);
    int calls = h ? isa(h, 5, 1, 1) | isa(h, 5, 1, 0) : -1;
    int closed = h ? close_(h) : -1;
    return !(h && calls == 0 && closed == 0);
}
