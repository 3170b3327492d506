package dev.kiln.isolation.vm;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import dev.kiln.KilnException;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.StandardProtocolFamily;
import java.nio.channels.Channels;
import java.nio.channels.SocketChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.FutureTask;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * A small client of Firecracker's REST API (HTTP/1.1 on the unix socket given to {@code firecracker --api-sock}),
 * for the requests kiln needs: boot source, drives, machine config, vsock, actions, instance info, pause and resume,
 * snapshot create and load. Requests are data
 * ({@link Request}: method, path, a Jackson body) built by the static methods, so a test checks each one against
 * Firecracker's API definition; {@link #send} carries one over a fresh connection, bounded by a timeout.
 */
final class FirecrackerApi {

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final int MAX_RESPONSE = 1 << 20;

    /** One API call; {@code body} is null for a GET. */
    record Request(String method, String path, JsonNode body) {
        @Override
        public String toString() {
            return method + " " + path + (body == null ? "" : " " + body);
        }
    }

    /** A response: its status and its JSON body (an empty object for 204). */
    record Response(int status, JsonNode body) {
    }

    /** The actions of {@code PUT /actions} kiln uses. */
    enum Action {
        InstanceStart, SendCtrlAltDel
    }

    private final Path socket;
    private final Duration timeout;

    FirecrackerApi(Path socket, Duration timeout) {
        this.socket = socket;
        this.timeout = timeout;
    }

    // ---- the requests ----

    static Request bootSource(Path kernel, String bootArgs, Path initrd) {
        ObjectNode b = JSON.createObjectNode();
        b.put("kernel_image_path", kernel.toAbsolutePath().toString());
        b.put("boot_args", bootArgs);
        if (initrd != null) b.put("initrd_path", initrd.toAbsolutePath().toString());
        return new Request("PUT", "/boot-source", b);
    }

    static Request drive(String id, Path file, boolean readOnly) {
        return drive(id, file.toAbsolutePath().toString(), readOnly);
    }

    /** {@code pathOnHost} as given: relative to the VMM's directory for a snapshot's placeholders. */
    static Request drive(String id, String pathOnHost, boolean readOnly) {
        if (!id.matches("[A-Za-z0-9_]+")) throw new IllegalArgumentException("bad drive id " + id);
        ObjectNode b = JSON.createObjectNode();
        b.put("drive_id", id);
        b.put("path_on_host", pathOnHost);
        b.put("is_root_device", false); // kiln-init in the initramfs mounts the disks itself
        b.put("is_read_only", readOnly);
        return new Request("PUT", "/drives/" + id, b);
    }

    /** Firecracker accepts 1 or an even number of vCPUs (at most 32). */
    static Request machineConfig(int vcpus, long memoryMiB) {
        int n = Math.min(32, vcpus <= 1 ? 1 : vcpus + (vcpus & 1));
        ObjectNode b = JSON.createObjectNode();
        b.put("vcpu_count", n);
        b.put("mem_size_mib", memoryMiB);
        return new Request("PUT", "/machine-config", b);
    }

    /** The hybrid vsock: Firecracker listens on {@code udsPath}; the guest's connections to port P reach {@code udsPath_P}. */
    static Request vsock(int guestCid, Path udsPath) {
        ObjectNode b = JSON.createObjectNode();
        b.put("guest_cid", guestCid);
        b.put("uds_path", udsPath.toString());
        return new Request("PUT", "/vsock", b);
    }

    /**
     * A virtio-net card backed by the TAP {@code hostDevice} (opened by name in Firecracker's network namespace) with
     * the guest MAC {@code mac}; {@code mtu} (68..65535) is advertised to the guest driver, 0 leaves it out.
     */
    static Request networkInterface(String id, String hostDevice, String mac, int mtu) {
        if (!id.matches("[A-Za-z0-9_]+")) throw new IllegalArgumentException("bad interface id " + id);
        ObjectNode b = JSON.createObjectNode();
        b.put("iface_id", id);
        b.put("host_dev_name", hostDevice);
        b.put("guest_mac", mac);
        if (mtu > 0) b.put("mtu", mtu);
        return new Request("PUT", "/network-interfaces/" + id, b);
    }

    /** {@code PATCH /vm}: {@code Paused} stops every vCPU (a snapshot is made of a paused VM), {@code Resumed} runs them. */
    static Request vmState(boolean paused) {
        ObjectNode b = JSON.createObjectNode();
        b.put("state", paused ? "Paused" : "Resumed");
        return new Request("PATCH", "/vm", b);
    }

    /**
     * {@code PUT /snapshot/create} (post-boot only, of a paused VM): a full snapshot, the VM's state (vCPUs, devices)
     * to {@code statePath} and its memory to {@code memPath}, both opened by Firecracker, as its uid, in its jail.
     */
    static Request snapshotCreate(Path statePath, Path memPath) {
        ObjectNode b = JSON.createObjectNode();
        b.put("snapshot_type", "Full");
        b.put("snapshot_path", statePath.toString());
        b.put("mem_file_path", memPath.toString());
        return new Request("PUT", "/snapshot/create", b);
    }

    /**
     * {@code PUT /snapshot/load}, on a Firecracker that was given nothing else (pre-boot only, "a fresh process"): the
     * state and the memory file ({@code mem_backend} File: mapped privately, never written), the VM left paused
     * ({@code resume_vm} false) so kiln re-points the drives first; {@code tap} (null: no card) replaces the TAP the
     * snapshot's card was backed by ({@code network_overrides}); the vsock keeps its socket path ({@code uds_path} is
     * relative to the VMM's directory, the same at every start), said again ({@code vsock_override}) so it never
     * depends on what the snapshot recorded; {@code clock_realtime}: kvmclock advanced by the wall-clock time since
     * the snapshot, so the guest's clock is not left in the past.
     */
    static Request snapshotLoad(Path statePath, Path memPath, String ifaceId, String tap, Path vsockUds) {
        ObjectNode b = JSON.createObjectNode();
        b.put("snapshot_path", statePath.toString());
        ObjectNode mem = b.putObject("mem_backend");
        mem.put("backend_type", "File");
        mem.put("backend_path", memPath.toString());
        b.put("resume_vm", false);
        if (tap != null) {
            if (!ifaceId.matches("[A-Za-z0-9_]+")) throw new IllegalArgumentException("bad interface id " + ifaceId);
            ObjectNode o = b.putArray("network_overrides").addObject();
            o.put("iface_id", ifaceId);
            o.put("host_dev_name", tap);
        }
        b.putObject("vsock_override").put("uds_path", vsockUds.toString());
        b.put("clock_realtime", true);
        return new Request("PUT", "/snapshot/load", b);
    }

    /** {@code PATCH /drives/ID} (post-boot: after a load too): the drive backed by {@code file} from now on. */
    static Request driveFile(String id, Path file) {
        if (!id.matches("[A-Za-z0-9_]+")) throw new IllegalArgumentException("bad drive id " + id);
        ObjectNode b = JSON.createObjectNode();
        b.put("drive_id", id);
        b.put("path_on_host", file.toAbsolutePath().toString());
        return new Request("PATCH", "/drives/" + id, b);
    }

    static Request action(Action action) {
        ObjectNode b = JSON.createObjectNode();
        b.put("action_type", action.name());
        return new Request("PUT", "/actions", b);
    }

    static Request describeInstance() {
        return new Request("GET", "/", null);
    }

    // ---- the transport ----

    /** Sends each request in order; the first that Firecracker refuses ends the sequence with its fault message. */
    void configure(List<Request> requests) {
        for (Request r : requests) send(r);
    }

    /** One request on a fresh connection; a status ≥ 300 becomes a KilnException with Firecracker's fault_message. */
    Response send(Request r) {
        FutureTask<Response> call = new FutureTask<>(() -> exchange(r));
        Thread.ofVirtual().start(call);
        try {
            Response resp = call.get(timeout.toMillis(), TimeUnit.MILLISECONDS);
            if (resp.status() >= 300) {
                throw new KilnException(KilnException.Kind.INTERNAL, "firecracker refused " + r.method() + " "
                        + r.path() + " (HTTP " + resp.status() + "): " + resp.body().path("fault_message").asText(""));
            }
            return resp;
        } catch (TimeoutException e) {
            call.cancel(true);
            throw new KilnException(KilnException.Kind.INTERNAL, "firecracker did not answer " + r.method() + " "
                    + r.path() + " within " + timeout.toMillis() + " ms");
        } catch (ExecutionException e) {
            throw new KilnException(KilnException.Kind.INTERNAL, "cannot talk to firecracker on " + socket + " ("
                    + r.method() + " " + r.path() + "): " + e.getCause().getMessage(), e.getCause());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new KilnException(KilnException.Kind.INTERNAL, "interrupted while talking to firecracker");
        }
    }

    /**
     * The requests as the VM relay sends them (kiln-shim {@code --api-requests FILE}): each one's HTTP bytes
     * ({@link #encode}), NUL-terminated. HTTP requests hold no NUL (JSON escapes one as \u0000), so the relay splits
     * on it and needs no HTTP or JSON of its own beyond reading the status line.
     */
    static byte[] script(List<Request> requests) throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        for (Request r : requests) {
            byte[] bytes = encode(r);
            for (byte b : bytes) {
                if (b == 0) throw new IllegalArgumentException("a NUL in " + r);
            }
            out.write(bytes);
            out.write(0);
        }
        return out.toByteArray();
    }

    /** The HTTP/1.1 bytes of a request ({@code Connection: close}: one request per connection). */
    static byte[] encode(Request r) throws IOException {
        byte[] body = r.body() == null ? new byte[0] : JSON.writeValueAsBytes(r.body());
        StringBuilder head = new StringBuilder()
                .append(r.method()).append(' ').append(r.path()).append(" HTTP/1.1\r\n")
                .append("Host: localhost\r\n")
                .append("Accept: application/json\r\n");
        if (r.body() != null) {
            head.append("Content-Type: application/json\r\n").append("Content-Length: ").append(body.length).append("\r\n");
        }
        head.append("Connection: close\r\n\r\n");
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        out.write(head.toString().getBytes(StandardCharsets.US_ASCII));
        out.write(body);
        return out.toByteArray();
    }

    private Response exchange(Request r) throws IOException {
        try (SocketChannel ch = SocketChannel.open(StandardProtocolFamily.UNIX)) {
            VmmSocket.connect(ch, socket);
            OutputStream out = Channels.newOutputStream(ch);
            out.write(encode(r));
            out.flush();
            return decode(Channels.newInputStream(ch));
        }
    }

    /** Reads a status line, headers, and a body of Content-Length bytes (or up to EOF without one). */
    static Response decode(InputStream in) throws IOException {
        String status = line(in);
        String[] parts = status.split(" ", 3);
        if (parts.length < 2 || !parts[0].startsWith("HTTP/1.")) throw new IOException("not an HTTP response: " + status);
        int code = Integer.parseInt(parts[1]);
        long length = -1;
        for (String h = line(in); !h.isEmpty(); h = line(in)) {
            int colon = h.indexOf(':');
            if (colon > 0 && h.substring(0, colon).strip().toLowerCase(Locale.ROOT).equals("content-length")) {
                length = Long.parseLong(h.substring(colon + 1).strip());
            }
        }
        if (length > MAX_RESPONSE) throw new IOException("response of " + length + " bytes is too large");
        byte[] body = length >= 0 ? in.readNBytes((int) length) : in.readNBytes(MAX_RESPONSE);
        JsonNode json = body.length == 0 ? JSON.createObjectNode() : JSON.readTree(body);
        return new Response(code, json);
    }

    private static String line(InputStream in) throws IOException {
        ByteArrayOutputStream b = new ByteArrayOutputStream();
        for (int c = in.read(); c != '\n'; c = in.read()) {
            if (c < 0) throw new IOException("connection closed in the response header");
            if (b.size() > 8192) throw new IOException("response header line too long");
            if (c != '\r') b.write(c);
        }
        return b.toString(StandardCharsets.US_ASCII);
    }
}
