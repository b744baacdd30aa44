//! The crate's one disarmable drop guard.

/// Runs `on_drop` with the value it guards unless disarmed: what a driver
/// call or an `.await` holds (of the pool: a slot, a waiter's place, a
/// connection; of the fault layer: a kill a fired rule decided) is given
/// back or carried out if the call panics or the future is dropped.
/// The value is reachable through `Deref`/`DerefMut` while guarded, and
/// [`disarm`](Guard::disarm) takes it back out.
pub(crate) struct Guard<T, F: FnOnce(T)> {
    armed: Option<(T, F)>,
}

impl<T, F: FnOnce(T)> Guard<T, F> {
    /// Guards `value`; `on_drop` runs with it if the guard is dropped armed.
    pub(crate) fn new(value: T, on_drop: F) -> Self {
        Guard {
            armed: Some((value, on_drop)),
        }
    }

    /// The guarded operation completed: returns the value, runs nothing.
    pub(crate) fn disarm(mut self) -> T {
        self.armed.take().expect("armed until disarmed or dropped").0
    }
}

impl<T, F: FnOnce(T)> std::ops::Deref for Guard<T, F> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.armed.as_ref().expect("armed until disarmed or dropped").0
    }
}

impl<T, F: FnOnce(T)> std::ops::DerefMut for Guard<T, F> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.armed.as_mut().expect("armed until disarmed or dropped").0
    }
}

impl<T, F: FnOnce(T)> Drop for Guard<T, F> {
    fn drop(&mut self) {
        if let Some((value, on_drop)) = self.armed.take() {
            on_drop(value);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;

    use super::Guard;

    #[test]
    fn runs_on_drop_unless_disarmed() {
        let ran = Cell::new(0);
        drop(Guard::new(3, |v| ran.set(v)));
        assert_eq!(ran.get(), 3);
        let mut g = Guard::new(4, |v| ran.set(v));
        *g += 1;
        assert_eq!(g.disarm(), 5);
        assert_eq!(ran.get(), 3);
    }
}
