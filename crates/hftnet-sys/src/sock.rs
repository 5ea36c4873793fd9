//! Socket options, recvmsg with control messages, epoll.
