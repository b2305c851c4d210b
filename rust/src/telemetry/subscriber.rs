//! The telemetry subscriber: its own MQTT session (rumqttc) on its own thread, subscribed at
//! QoS 1 to every device's telemetry topic. Messages are acknowledged only when Python says
//! their batch is committed (manual acks), so a crash between receipt and commit loses
//! nothing: the broker redelivers to the persistent session, and the store's redelivery check
//! counts each window once. A bounded queue stops the thread reading when Python falls behind.
//! A second thread cuts the queue into batches and decodes each on the rayon pool while Python
//! stores the previous one, so decoding is off the worker's path.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, SendTimeoutError, Sender};
use rumqttc::{
    Client, Connection, Event, MqttOptions, Packet, Publish, QoS, TlsConfiguration, Transport,
};

use super::frame::MAX_FRAME_BYTES;
use super::{decode_with_profiles, Decoded};

/// Topic levels around the device id: `edgewise/v1/devices/{id}/telemetry`.
const TOPIC_PREFIX: &str = "edgewise/v1/devices/";
const TOPIC_SUFFIX: &str = "/telemetry";
const DEVICE_ID_MAX_LENGTH: usize = 64;
/// Room for the topic and MQTT headers around the largest frame the collector accepts; a
/// larger packet is still read (and refused by the decoder) instead of breaking the session,
/// which would make the broker redeliver it forever.
const MAX_PACKET_BYTES: usize = 4 * MAX_FRAME_BYTES + 4096;

/// Where and as whom to connect.
pub struct Settings {
    pub host: String,
    pub port: u16,
    pub client_id: String,
    pub username: Option<String>,
    pub password: Option<String>,
    /// None: plain TCP. Some(None): TLS with the system's CAs. Some(Some(pem)): this CA.
    pub tls: Option<Option<Vec<u8>>>,
    pub keepalive: Duration,
    pub backoff: (Duration, Duration),
    /// Messages received and not yet batched; a full queue stops the reading.
    pub queue: usize,
    /// A batch closes at this many messages, or this long after its first one.
    pub batch_size: usize,
    pub batch_wait: Duration,
}

/// One message received: its device (or why the topic names none), as the broker sent it.
pub struct Received {
    pub device: Result<String, String>,
    pub publish: Publish,
    /// The connection it came on: an ack is only valid on that same connection.
    pub connection: u64,
}

/// One batch ready for Python: the frames of valid device topics, decoded, and every message
/// with the connection it came on (for the acks).
pub struct Batch {
    pub devices: Vec<String>,
    pub payloads: Vec<Vec<u8>>,
    pub decoded: Vec<Result<Decoded, String>>,
    /// `(topic, reason)` of messages whose topic names no valid device.
    pub refused: Vec<(String, String)>,
    pub acks: Vec<(u64, Publish)>,
}

/// What the session is doing, for /metrics and logs.
#[derive(Default)]
pub struct Status {
    pub connected: AtomicBool,
    pub connections: AtomicU64,
    pub last_error: Mutex<Option<String>>,
}

pub struct Subscriber {
    client: Client,
    messages: Receiver<Received>,
    batches: Receiver<Batch>,
    stop: Arc<AtomicBool>,
    pub status: Arc<Status>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Subscriber {
    pub fn start(settings: Settings, pool: Arc<rayon::ThreadPool>) -> Result<Self, String> {
        let mut options = MqttOptions::new(&settings.client_id, &settings.host, settings.port);
        options
            .set_clean_session(false)
            .set_manual_acks(true)
            .set_keep_alive(settings.keepalive)
            .set_max_packet_size(MAX_PACKET_BYTES, MAX_PACKET_BYTES);
        if let Some(username) = &settings.username {
            options.set_credentials(username, settings.password.clone().unwrap_or_default());
        }
        match &settings.tls {
            None => {}
            Some(None) => {
                options.set_transport(Transport::Tls(TlsConfiguration::Native));
            }
            Some(Some(ca)) => {
                options.set_transport(Transport::Tls(TlsConfiguration::SimpleNative {
                    ca: ca.clone(),
                    client_auth: None,
                }));
            }
        }
        // Acks and the subscription go through the request channel: room for an ack of every
        // message that can be waiting, so acking never waits on the reading thread.
        let (client, connection) = Client::new(options, 2 * settings.queue + 64);
        let (sender, messages) = bounded(settings.queue);
        let stop = Arc::new(AtomicBool::new(false));
        let status = Arc::new(Status::default());
        let reader = Reader {
            client: client.clone(),
            sender,
            stop: stop.clone(),
            status: status.clone(),
            backoff: settings.backoff,
        };
        let spawn = |name: &str, work: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new()
                .name(name.into())
                .spawn(work)
                .map_err(|e| format!("cannot start the {name} thread: {e}"))
        };
        // One batch ready while Python stores the one before: decoding runs ahead by one.
        let (ready, batches) = bounded(1);
        let batcher = Batcher {
            messages: messages.clone(),
            ready,
            stop: stop.clone(),
            size: settings.batch_size.max(1),
            wait: settings.batch_wait,
            pool,
        };
        let threads = vec![
            spawn(
                "edgewise-telemetry",
                Box::new(move || reader.run(connection)),
            )?,
            spawn(
                "edgewise-telemetry-batches",
                Box::new(move || batcher.run()),
            )?,
        ];
        Ok(Self {
            client,
            messages,
            batches,
            stop,
            status,
            threads: Mutex::new(threads),
        })
    }

    /// The next batch, waiting up to `timeout` for one; None if none came.
    pub fn next_batch(&self, timeout: Duration) -> Option<Batch> {
        self.batches.recv_timeout(timeout).ok()
    }

    /// Acknowledges `messages` to the broker; those of an earlier connection are skipped
    /// (the broker redelivers them on the current one, where they are acked in turn).
    pub fn ack(&self, messages: &[(u64, Publish)]) -> usize {
        let current = self.status.connections.load(Ordering::SeqCst);
        let mut acked = 0;
        for (connection, publish) in messages {
            if *connection == current && self.client.ack(publish).is_ok() {
                acked += 1;
            }
        }
        acked
    }

    /// Messages received and waiting to be taken.
    pub fn pending(&self) -> usize {
        self.messages.len()
    }

    /// Disconnects and ends the thread; messages not acked stay with the broker.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.client.try_disconnect();
        for thread in std::mem::take(&mut *self.threads.lock().expect("subscriber lock poisoned")) {
            let _ = thread.join();
        }
        self.status.connected.store(false, Ordering::SeqCst);
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        self.stop();
    }
}

struct Reader {
    client: Client,
    sender: Sender<Received>,
    stop: Arc<AtomicBool>,
    status: Arc<Status>,
    backoff: (Duration, Duration),
}

impl Reader {
    fn run(self, mut connection: Connection) {
        let mut delay = self.backoff.0;
        while !self.stop.load(Ordering::SeqCst) {
            match connection.recv() {
                Ok(Ok(Event::Incoming(Packet::ConnAck(_)))) => {
                    self.status.connections.fetch_add(1, Ordering::SeqCst);
                    delay = self.backoff.0;
                    let filter = format!("{TOPIC_PREFIX}+{TOPIC_SUFFIX}");
                    if let Err(e) = self.client.try_subscribe(filter, QoS::AtLeastOnce) {
                        self.failed(format!("cannot subscribe: {e}"));
                    }
                }
                // Connected means subscribed: from here on every telemetry message comes here.
                Ok(Ok(Event::Incoming(Packet::SubAck(_)))) => {
                    self.status.connected.store(true, Ordering::SeqCst);
                }
                Ok(Ok(Event::Incoming(Packet::Publish(publish)))) => self.hand_over(publish),
                Ok(Ok(_)) => {}
                Ok(Err(e)) => {
                    if self.stop.load(Ordering::SeqCst) {
                        break;
                    }
                    self.failed(e.to_string());
                    self.sleep(delay);
                    delay = (delay * 2).min(self.backoff.1);
                }
                Err(_) => break, // every client handle dropped
            }
        }
    }

    /// Queues one message, waiting while the queue is full: the thread does not read the
    /// socket meanwhile, so the broker holds the rest.
    fn hand_over(&self, publish: Publish) {
        let mut item = Received {
            device: device_of(&publish.topic),
            connection: self.status.connections.load(Ordering::SeqCst),
            publish,
        };
        loop {
            match self.sender.send_timeout(item, Duration::from_millis(100)) {
                Ok(()) => return,
                Err(SendTimeoutError::Timeout(back)) if !self.stop.load(Ordering::SeqCst) => {
                    item = back;
                }
                Err(_) => return,
            }
        }
    }

    fn failed(&self, error: String) {
        self.status.connected.store(false, Ordering::SeqCst);
        *self.status.last_error.lock().expect("status lock poisoned") = Some(error);
    }

    /// Sleeps `delay`, waking early when stopped.
    fn sleep(&self, delay: Duration) {
        let end = Instant::now() + delay;
        while !self.stop.load(Ordering::SeqCst) {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            std::thread::sleep(left.min(Duration::from_millis(50)));
        }
    }
}

/// Cuts the queue of received messages into batches and decodes them.
struct Batcher {
    messages: Receiver<Received>,
    ready: Sender<Batch>,
    stop: Arc<AtomicBool>,
    size: usize,
    wait: Duration,
    pool: Arc<rayon::ThreadPool>,
}

impl Batcher {
    fn run(self) {
        while !self.stop.load(Ordering::SeqCst) {
            let taken = self.take();
            if taken.is_empty() {
                continue;
            }
            let mut batch = self.decode(taken);
            loop {
                match self.ready.send_timeout(batch, Duration::from_millis(100)) {
                    Ok(()) => break,
                    Err(SendTimeoutError::Timeout(back)) if !self.stop.load(Ordering::SeqCst) => {
                        batch = back;
                    }
                    Err(_) => return,
                }
            }
        }
    }

    /// Up to `size` messages: the first within 100 ms (then stop is checked again), the
    /// rest within `wait` of it.
    fn take(&self) -> Vec<Received> {
        let mut out = Vec::new();
        match self.messages.recv_timeout(Duration::from_millis(100)) {
            Ok(m) => out.push(m),
            Err(_) => return out,
        }
        let deadline = Instant::now() + self.wait;
        while out.len() < self.size {
            match self.messages.recv_deadline(deadline) {
                Ok(m) => out.push(m),
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => break,
            }
        }
        out
    }

    fn decode(&self, taken: Vec<Received>) -> Batch {
        let mut devices = Vec::with_capacity(taken.len());
        let mut payloads = Vec::with_capacity(taken.len());
        let mut refused = Vec::new();
        let mut acks = Vec::with_capacity(taken.len());
        for received in taken {
            match received.device {
                Ok(device) => {
                    devices.push(device);
                    payloads.push(received.publish.payload.to_vec());
                }
                Err(reason) => refused.push((received.publish.topic.clone(), reason)),
            }
            acks.push((received.connection, received.publish));
        }
        let decoded = self.pool.install(|| {
            use rayon::prelude::*;
            payloads
                .par_iter()
                .map(|p| decode_with_profiles(p))
                .collect()
        });
        Batch {
            devices,
            payloads,
            decoded,
            refused,
            acks,
        }
    }
}

/// The device id a telemetry topic names, checked as `transport/topics.py` checks it.
pub fn device_of(topic: &str) -> Result<String, String> {
    let device = topic
        .strip_prefix(TOPIC_PREFIX)
        .and_then(|rest| rest.strip_suffix(TOPIC_SUFFIX))
        .ok_or_else(|| format!("{topic}: not a device telemetry topic"))?;
    let mut chars = device.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || "._:-".contains(c));
    if !first_ok || !rest_ok || device.len() > DEVICE_ID_MAX_LENGTH {
        return Err(format!("{topic}: not a valid device id"));
    }
    Ok(device.to_string())
}

#[cfg(test)]
mod tests {
    use super::device_of;

    #[test]
    fn device_ids_come_from_the_topic() {
        assert_eq!(
            device_of("edgewise/v1/devices/cam-01/telemetry").unwrap(),
            "cam-01"
        );
        assert!(device_of("edgewise/v1/devices/a/b/telemetry").is_err());
        assert!(device_of("edgewise/v1/devices//telemetry").is_err());
        assert!(device_of("edgewise/v1/devices/cam/state").is_err());
        assert!(device_of(&format!("edgewise/v1/devices/{}/telemetry", "a".repeat(65))).is_err());
    }
}
