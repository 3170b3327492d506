package dev.kiln.containerd;

import com.google.protobuf.ByteString;
import dev.kiln.containerd.wire.ttrpc.Request;
import dev.kiln.containerd.wire.ttrpc.Response;
import dev.kiln.containerd.wire.ttrpc.RpcStatus;
import java.io.IOException;
import java.net.StandardProtocolFamily;
import java.net.UnixDomainSocketAddress;
import java.nio.channels.ServerSocketChannel;
import java.nio.channels.SocketChannel;
import java.nio.file.Path;
import jdk.net.ExtendedSocketOptions;
import jdk.net.UnixDomainPrincipal;

/**
 * The shim's TTRPC server on a unix socket: each connection is read by one virtual thread and each request runs in
 * a virtual thread of its own, because containerd sends Kill, State and others on the same connection while a Wait
 * blocks. Only a peer running as root (SO_PEERCRED, as containerd's own shims check "same user") is served.
 */
final class TtrpcServer {

    /** A TTRPC service: the method's request payload in, the response payload out, or a {@link RpcError}. */
    interface Service {
        byte[] call(String method, byte[] payload) throws Exception;
    }

    /** An error with its gRPC code, as containerd's errdefs maps it back (NotFound 5, FailedPrecondition 9...). */
    static final class RpcError extends RuntimeException {
        final int code;

        RpcError(int code, String message) {
            super(message);
            this.code = code;
        }

        static RpcError notFound(String m) { return new RpcError(5, m); }
        static RpcError invalid(String m) { return new RpcError(3, m); }
        static RpcError precondition(String m) { return new RpcError(9, m); }
        static RpcError unimplemented(String m) { return new RpcError(12, m); }
        static RpcError alreadyExists(String m) { return new RpcError(6, m); }
    }

    private final String serviceName;
    private final Service service;
    private final ShimLog log;

    TtrpcServer(String serviceName, Service service, ShimLog log) {
        this.serviceName = serviceName;
        this.service = service;
        this.log = log;
    }

    /** Binds {@code socket} (0600 by the umask the daemon sets) and serves it on a virtual thread until the process ends. */
    ServerSocketChannel serve(Path socket) throws IOException {
        ServerSocketChannel server = ServerSocketChannel.open(StandardProtocolFamily.UNIX);
        // bound under a temporary name and renamed once listening: the JDK binds and listens in two steps, and
        // `start` reports the shim ready as soon as the socket's name exists (a dial in between is refused)
        Path pending = socket.resolveSibling(socket.getFileName() + ".new");
        java.nio.file.Files.deleteIfExists(pending);
        server.bind(UnixDomainSocketAddress.of(pending));
        java.nio.file.Files.move(pending, socket, java.nio.file.StandardCopyOption.ATOMIC_MOVE);
        Thread.ofVirtual().name("ttrpc-accept").start(() -> {
            while (server.isOpen()) {
                try {
                    SocketChannel client = server.accept();
                    Thread.ofVirtual().name("ttrpc-conn").start(() -> connection(client));
                } catch (IOException e) {
                    if (server.isOpen()) log.line("ttrpc accept failed: " + e.getMessage());
                    return;
                }
            }
        });
        return server;
    }

    private void connection(SocketChannel client) {
        try (TtrpcConnection conn = new TtrpcConnection(client)) {
            UnixDomainPrincipal peer = client.getOption(ExtendedSocketOptions.SO_PEERCRED);
            if (!peer.user().getName().equals("root")) {
                log.line("refused a ttrpc connection from user " + peer.user().getName() + " (only root is served)");
                return;
            }
            while (true) {
                TtrpcConnection.Frame frame = conn.read();
                if (frame.type() != TtrpcConnection.REQUEST) continue;   // data frames: no streaming RPC here
                Thread.ofVirtual().name("ttrpc-call").start(() -> answer(conn, frame));
            }
        } catch (IOException e) {
            // the client went away: containerd closes connections after a task is deleted
        }
    }

    private void answer(TtrpcConnection conn, TtrpcConnection.Frame frame) {
        long t0 = System.nanoTime();
        Response.Builder response = Response.newBuilder();
        String method = "?";
        try {
            Request request = Request.parseFrom(frame.data());
            method = request.getMethod();
            if (!request.getService().equals(serviceName)) {
                throw RpcError.unimplemented("service " + request.getService() + " is not served by this shim");
            }
            byte[] out = service.call(method, request.getPayload().toByteArray());
            response.setStatus(RpcStatus.newBuilder().setCode(0)).setPayload(ByteString.copyFrom(out));
        } catch (RpcError e) {
            response.setStatus(RpcStatus.newBuilder().setCode(e.code).setMessage(e.getMessage()));
        } catch (Exception e) {
            log.line(method + " failed: " + e);
            // Unknown (2) as containerd's errdefs reads any unmapped error
            response.setStatus(RpcStatus.newBuilder().setCode(2).setMessage(String.valueOf(e.getMessage())));
        }
        try {
            conn.write(frame.stream(), TtrpcConnection.RESPONSE, response.build().toByteArray());
        } catch (IOException e) {
            log.line("cannot answer " + method + ": " + e.getMessage());
        }
        if (log.debugging() && !method.equals("Wait")) {
            log.debug(method + " answered in " + (System.nanoTime() - t0) / 1_000_000 + " ms (status "
                    + response.getStatus().getCode() + ")");
        }
    }
}
