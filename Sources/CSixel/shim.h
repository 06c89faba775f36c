// libsixel, for pictures in terminals that speak DEC sixel graphics.
#include <sixel/sixel.h>
