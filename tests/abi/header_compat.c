/*
 * Our header and Xen's declare the same functions with compatible types:
 * include ours, then Xen's (its include guard lifted). Any prototype that
 * differs is a "conflicting types" error under -Werror.
 */
#include "xendevicemodel.h"
#undef XENDEVICEMODEL_H
#include </usr/include/xendevicemodel.h>

int main(void) { return 0; }
