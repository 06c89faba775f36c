// ZeroMQ, for the Jupyter kernel's sockets.
#include <zmq.h>
